"""The console's kombu transports: a poison message is set aside, never a crash of the worker.

**The embedded broker** (``moleculefs://``, the default of ``CELERY_BROKER_URL``) is kombu's
filesystem transport with two repairs:

- kombu's ``_put`` creates the message file and only then writes it, so a worker polling the
  folder could take a file that was still empty. Here a message is written under a name the
  reader ignores and renamed into place, which is atomic on one filesystem.
- kombu's ``_get`` decodes whatever file it finds; one file that is not JSON (or not a kombu
  message) raised out of the worker's consumer and stopped the worker. Here such a file is moved
  to the ``poison`` folder beside the queue folder (``var/broker/poison/``), with the reason in a
  ``<name>.reason`` file beside it and in the log, and the next message is read.

**Redis** (``redis://``, the distributed deployment): kombu's Redis transport decodes each item
it pops from a queue's list with no guard either, and Celery stops the worker on the error
("Unrecoverable error: JSONDecodeError"). This module re-points kombu's ``redis`` and ``rediss``
aliases at a subclass that sets such an item aside in the Redis list ``molecule.poison`` (a
JSON record: the queue, the reason, the raw text) and logs why, so ``CELERY_BROKER_URL`` keeps
its ordinary ``redis://`` form. Importing this module (``molecule/celery.py`` does) selects them.

On both, a message that Celery itself refuses (no task header, a task this worker does not know)
is rejected by Celery with its reason in the worker's log; it is set aside the same way instead
of vanishing. What is set aside is never retried: a lost backend call is queued again by the
reconcile sweep (docs/architecture.md §3).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import uuid
from queue import Empty
from time import monotonic
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

ALIAS = "moleculefs"
# Where the Redis transport keeps what it set aside, newest first, at most POISON_KEEP records.
REDIS_POISON_LIST = "molecule.poison"
POISON_KEEP = 1000
# How much of a poison message's text goes into the log line (all of it is kept aside).
LOGGED_CHARS = 200

log = logging.getLogger(__name__)

JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def envelope_problem(channel: Any, payload: Any) -> str | None:
    """Why a decoded payload is not a kombu message this channel can deliver, or None."""
    if not isinstance(payload, dict):
        return f"the JSON is {JSON_TYPES.get(type(payload), 'not an object')}, not a message"
    properties = payload.get("properties")
    if not isinstance(properties, dict):
        return "it has no 'properties' object, so it is not a kombu message"
    if "delivery_tag" not in properties:
        return "its properties carry no delivery tag, so it is not a kombu message"
    info = properties.get("delivery_info")
    if not isinstance(info, dict) or not {"exchange", "routing_key"} <= info.keys():
        # Without them an unacknowledged message cannot be put back when the worker stops.
        return "its properties carry no delivery_info with an exchange and a routing key"
    if not isinstance(payload.get("headers") or {}, dict):
        return "its 'headers' is not an object"
    try:
        channel.Message(payload, channel=channel)
    except Exception as error:
        return f"it cannot be read as a kombu message ({type(error).__name__}: {error})"
    return None


def _shown(raw: bytes | str) -> str:
    text = bytes_to_str(raw)
    return repr(text[:LOGGED_CHARS]) + ("..." if len(text) > LOGGED_CHARS else "")


class SetsPoisonAside:
    """What both channels share: check each message before delivery; keep rejects aside."""

    def _set_aside(self, queue: str, raw: bytes | str, reason: str) -> None:
        raise NotImplementedError

    def basic_consume(self, queue: str, *args: Any, **kwargs: Any) -> Any:
        result = super().basic_consume(queue, *args, **kwargs)
        callbacks = self.connection._callbacks
        deliver = callbacks[queue]

        def checked(payload: Any) -> Any:
            problem = envelope_problem(self, payload)
            if problem is not None:
                self._set_aside(queue, dumps(payload), problem)
                return None
            return deliver(payload)

        callbacks[queue] = checked
        return result

    def basic_reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        if not requeue:
            # Celery rejects (for good) what it cannot run, and logs why just before.
            with contextlib.suppress(Exception):
                message = self.qos.get(delivery_tag)
                info = message.delivery_info or {}
                self._set_aside(
                    str(info.get("routing_key") or "?"),
                    dumps(message.serializable()),
                    "the worker rejected it (not a task it can run; its log says why, just "
                    "before this line)",
                )
        super().basic_reject(delivery_tag, requeue=requeue)


class Channel(SetsPoisonAside, filesystem.Channel):
    @property
    def poison_folder(self) -> str:
        configured = self.transport_options.get("poison_folder")
        if configured:
            return configured
        queue_folder = os.path.normpath(self.data_folder_in)
        return os.path.join(os.path.dirname(queue_folder), "poison")

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

    def _get(self, queue: str) -> Any:
        wanted = f"{queue}.msg"
        folder = self.data_folder_in
        for name in sorted(os.listdir(folder)):
            if name.partition(".")[2] != wanted:
                continue
            # Claimed by renaming it out of the reader's sight: of two consumers racing for one
            # file, exactly one rename succeeds.
            claimed = os.path.join(folder, f".{name}.claimed")
            try:
                os.rename(os.path.join(folder, name), claimed)
            except OSError:
                continue
            try:
                with open(claimed, "rb") as file:
                    raw = file.read()
            except OSError as error:
                raise filesystem.ChannelError(f"Cannot read {claimed!r} from the queue.") from error
            try:
                payload = loads(bytes_to_str(raw))
            except ValueError as error:
                problem = f"it is not JSON ({error})"
            else:
                problem = envelope_problem(self, payload)
            if problem is not None:
                self._set_aside(queue, raw, problem, name=name)
                with contextlib.suppress(OSError):
                    os.unlink(claimed)
                continue
            self._done_with(claimed, name)
            return payload
        raise Empty()

    def _done_with(self, claimed: str, name: str) -> None:
        with contextlib.suppress(OSError):
            if self.store_processed:
                os.makedirs(self.processed_folder, exist_ok=True)
                os.replace(claimed, os.path.join(self.processed_folder, name))
            else:
                os.unlink(claimed)

    def _set_aside(
        self, queue: str, raw: bytes | str, reason: str, *, name: str | None = None
    ) -> None:
        name = name or f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        kept = os.path.join(self.poison_folder, name)
        try:
            os.makedirs(self.poison_folder, exist_ok=True)
            with open(kept, "wb") as file:
                file.write(str_to_bytes(raw))
            with open(f"{kept}.reason", "w") as file:
                file.write(
                    f"{reason}\nqueue: {queue}\n"
                    f"set aside: {time.strftime('%Y-%m-%dT%H:%M:%S%z')} by pid {os.getpid()}\n"
                )
        except OSError as error:
            log.error(
                "Dropped a poison message from queue %r: %s; it could not be kept in %s (%s). "
                "It began %s",
                queue,
                reason,
                self.poison_folder,
                error,
                _shown(raw),
            )
            return
        log.error(
            "Set aside a poison message from queue %r: %s. Kept as %s (the reason beside it, in "
            "%s.reason). It began %s",
            queue,
            reason,
            kept,
            os.path.basename(kept),
            _shown(raw),
        )


class Transport(filesystem.Transport):
    Channel = Channel


class RedisChannel(SetsPoisonAside, kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            # The worker lost the broker and let go of the connection; closing this channel then
            # tries to put back what it holds unacknowledged (a task with a countdown, one in
            # progress under acks_late), and without this the missing client raised an
            # AttributeError that stopped the whole worker ("Unrecoverable error"). A connection
            # error is what it is: the worker reconnects, and the messages stay in Redis's unacked
            # set, to be restored after the visibility timeout.
            raise kombu_redis.get_redis_ConnectionError()("the connection to Redis was released")
        return super()._connparams(asynchronous)

    def _brpop_read(self, **options: Any) -> Any:
        try:
            return super()._brpop_read(**options)
        except json.JSONDecodeError as error:
            # kombu moved the list it read from to the end of its cycle just before decoding.
            items = getattr(self._queue_cycle, "items", None) or ["?"]
            self._set_aside(str(items[-1]), error.doc, f"it is not JSON ({error})")
            raise Empty() from None

    def _get(self, queue: str) -> Any:
        try:
            return super()._get(queue)
        except json.JSONDecodeError as error:
            self._set_aside(queue, error.doc, f"it is not JSON ({error})")
            raise Empty() from None

    def _set_aside(self, queue: str, raw: bytes | str, reason: str) -> None:
        record = dumps(
            {
                "queue": queue,
                "reason": reason,
                "raw": bytes_to_str(raw),
                "set_aside_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "pid": os.getpid(),
            }
        )
        try:
            with self.conn_or_acquire() as client:
                client.lpush(REDIS_POISON_LIST, record)
                client.ltrim(REDIS_POISON_LIST, 0, POISON_KEEP - 1)
        except Exception as error:
            log.error(
                "Dropped a poison message from queue %r: %s; it could not be kept in the Redis "
                "list %s (%s). It began %s",
                queue,
                reason,
                REDIS_POISON_LIST,
                error,
                _shown(raw),
            )
            return
        log.error(
            "Set aside a poison message from queue %r: %s. Kept in the Redis list %s. It began %s",
            queue,
            reason,
            REDIS_POISON_LIST,
            _shown(raw),
        )


class RedisTransport(kombu_redis.Transport):
    Channel = RedisChannel


TRANSPORT_ALIASES[ALIAS] = "molecule.broker:Transport"
TRANSPORT_ALIASES["redis"] = TRANSPORT_ALIASES["rediss"] = "molecule.broker:RedisTransport"
