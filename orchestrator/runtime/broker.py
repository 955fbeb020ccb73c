"""Kombu's Redis transport, made to survive the loss of its connection.

When a worker's connection to Redis breaks, Celery collects the old connection: kombu detaches
the transport from its connection (``transport.client = None``) and then, closing the channels,
restores their unacknowledged messages, which needs a new Redis client built from
``transport.client.hostname``: ``AttributeError: 'NoneType' object has no attribute 'hostname'``,
and the worker stops ("Unrecoverable error"). Those messages are in Redis' unacked hash already:
the visibility-timeout restore of any consumer puts them back, and the reconciler republishes their
jobs sooner. So a channel whose transport is detached skips the restore instead of crashing. The
same happens to a task that ends after the connection was collected and acknowledges its message on
the old channel: that acknowledgement is skipped too.
Used for ``redis://`` brokers (``CELERY_BROKER_TRANSPORT`` in settings).
"""
from __future__ import annotations

import logging

from kombu.transport import redis, virtual

log = logging.getLogger("celestra.broker")


class QoS(redis.QoS):
    def _detached(self) -> bool:
        """The channel's transport was detached from its connection (a lost connection collected)."""
        transport = getattr(self.channel, "connection", None)
        return transport is None or getattr(transport, "client", None) is None

    def restore_unacked(self, client=None):
        if client is None and self._detached():
            log.warning("connection to Redis lost: %d unacknowledged message(s) left for the visibility "
                        "restore and the reconciler", len(self._delivered))
            self._delivered.clear()
            return
        super().restore_unacked(client)

    def ack(self, delivery_tag):
        # a task that ends after its connection was collected: its message cannot be acknowledged on
        # that connection; it stays in the unacked hash and comes back after the visibility timeout,
        # when the job's claim (or the step's idempotence) makes the redelivery do nothing
        if self._detached():
            log.info("connection to Redis lost: message %s stays unacknowledged", delivery_tag)
            virtual.QoS.ack(self, delivery_tag)
            return
        super().ack(delivery_tag)

    def reject(self, delivery_tag, requeue=False):
        if self._detached():
            log.info("connection to Redis lost: message %s stays unacknowledged", delivery_tag)
            virtual.QoS.ack(self, delivery_tag)
            return
        super().reject(delivery_tag, requeue)


class Channel(redis.Channel):
    QoS = QoS


class Transport(redis.Transport):
    Channel = Channel
