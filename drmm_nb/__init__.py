__version__ = "0.0.1"

import warnings as _warnings
# fastai decorates some of its own functions with `torch.jit.script` when it is imported, which torch deprecates: the
# warning concerns fastai's code, not the user's, so importing drmm_nb does not print it (only that message is hidden)
_warnings.filterwarnings('ignore', message=r'`torch\.jit\.script` is deprecated', category=FutureWarning, module=r'torch\.jit')
