"""Training pipeline: IDX data -> Keras CNN -> int8 TFLite + model card in models/."""
