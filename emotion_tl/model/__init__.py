"""The model: ResNet50 with a new head and the parameter groups of the two approaches
(resnet), the ImageNet weights it starts from (weights, keras_resnet50), and checkpoints that
carry a trained model with everything needed to use it (checkpoint)."""
