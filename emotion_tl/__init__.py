"""emotion_tl: transfer learning for facial-expression classification with ResNet50."""

__version__ = "0.1.0"
