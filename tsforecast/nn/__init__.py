"""The torch boundary: recurrent networks, their training loop and the forecasters around them.

Modules, lowest first (each imports only the ones before it): ``parameters`` (the allowed values of
the forecasters' parameters), ``modules`` (networks: tensors in, tensors out), ``device``,
``covariates`` (their scaling, per-step rows and inputs), ``streams`` (the panel on the device and the
per-step features), ``codec`` (the one encoder/decoder between a panel and the network), ``training``
(the TBPTT loop), ``state`` (the fitted state), ``persistence`` (model files), ``forecaster`` (the
shared estimator base), ``estimators`` (LSTM/GRU/RNN forecasters and ``load``), ``diagnostics``.
"""

from tsforecast.nn.estimators import GRUForecaster, LSTMForecaster, RNNForecaster, load
from tsforecast.nn.forecaster import RecurrentForecaster

__all__ = ["GRUForecaster", "LSTMForecaster", "RNNForecaster", "RecurrentForecaster", "load"]
