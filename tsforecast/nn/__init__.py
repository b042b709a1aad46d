"""The torch boundary: recurrent networks, their training loop and the forecasters around them.

``modules`` (networks: tensors in, tensors out), ``streams`` (the panel on the device and the per-step
features), ``training`` (the TBPTT loop), ``estimators`` (LSTM/GRU/RNN forecasters), ``persistence``
(``save``/``load``).
"""

from tsforecast.nn.estimators import GRUForecaster, LSTMForecaster, RNNForecaster
from tsforecast.nn.persistence import load

__all__ = ["GRUForecaster", "LSTMForecaster", "RNNForecaster", "load"]
