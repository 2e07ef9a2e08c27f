"""Finding the face in a photo before training: the detector (detect.py, BlazeFace), its model
file from a PyPI wheel (model_file.py), detections cached by file content (cache.py), and the
crop each image gets (crop.py, `FaceFinder.frame`)."""
