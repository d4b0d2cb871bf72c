"""kombu's filesystem transport, made safe for a reader and a writer racing on one message.

The embedded default runs Celery on kombu's filesystem transport (no broker server). Its
``_put`` creates the message file and only then writes it, so a worker polling the folder can
move and read a file that is still empty and crash on the JSON decode (seen after a few quick
restarts from the command line). Here a message is written under a name the reader ignores and
renamed into place, which is atomic on one filesystem. Selected by ``CELERY_BROKER_URL``'s
default, ``moleculefs://``.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

ALIAS = "moleculefs"


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # The reader takes files whose name after the first dot is "<queue>.msg": a leading dot
        # and a .tmp suffix keep the half-written file out of its sight.
        draft = os.path.join(self.data_folder_out, f".{name}.tmp")
        try:
            with open(draft, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(draft, final)
        except OSError as error:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from error


class Transport(filesystem.Transport):
    Channel = Channel


TRANSPORT_ALIASES[ALIAS] = "molecule.broker:Transport"
