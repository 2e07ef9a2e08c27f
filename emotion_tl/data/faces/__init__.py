"""Finding the face in a photo before training: the table of detectors (detect.py), BlazeFace
(blazeface.py) and its model file from a PyPI wheel (model_file.py), what a detector returns
(face.py), detections cached by file content (cache.py), and the crop each image gets
(crop.py, `FaceFinder.frame`)."""
