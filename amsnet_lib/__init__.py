"""amsnet: reference implementation of AMSNet (Chen et al., ESWA 2023) for speech emotion recognition."""
from __future__ import annotations

__version__ = "0.1.0"
