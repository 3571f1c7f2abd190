"""One model load at a time in a process. transformers builds a model's layers on the meta device through
process-wide patches, so two models loading at once in two threads (the app's background warm-up of the answer
model and a question loading the embedder) corrupt each other ("Cannot copy out of meta tensor"). Every load of a
model holds `LOADING`, its first imports of transformers, sentence-transformers and peft included: two threads
importing them at once can be handed each other's half-initialised module ("cannot import name 'AlignDevicesHook'
from partially initialized module 'accelerate.hooks'", seen with transformers 5.5)."""

from __future__ import annotations

import threading

LOADING = threading.RLock()
