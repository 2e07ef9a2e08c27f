"""The model: the table of source models a run can start from (backbones; the ImageNet ResNet50
in resnet, its weights in weights and keras_resnet50), the network built from an entry with a
new head and the parameter groups of the two approaches (network), and checkpoints that carry a
trained model with everything needed to use it (checkpoint, export)."""
