"""The token controller of kube-controller-manager, for long-lived ServiceAccount tokens.

A Secret of type ``kubernetes.io/service-account-token`` annotated with
``kubernetes.io/service-account.name`` gets a signed token, the CA bundle and the
namespace written into it; a Secret naming an account that does not exist (or no longer
has the uid it was made for) is deleted, and so are an account's token Secrets when the
account goes. Work is queued at commit time and done on the event loop right after, as
the real controller reacts to its informers a moment after the write.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from ..errors import StatusError
from .tokens import TokenSigner

log = logging.getLogger(__name__)

SA_TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME_KEY = "kubernetes.io/service-account.name"
SA_UID_KEY = "kubernetes.io/service-account.uid"


def _b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


class TokenController:
    """Populates and cleans up legacy ServiceAccount token Secrets."""

    def __init__(self, store: Any, signer: TokenSigner, ca_pem: Callable[[], bytes]) -> None:
        self.store = store
        self.signer = signer
        self.ca_pem = ca_pem
        self._tasks: set[asyncio.Task[None]] = set()
        self.secrets = store.registry.lookup("secrets")
        self.accounts = store.registry.lookup("serviceaccounts")

    # called by the store at commit time: only schedule, never write from inside a commit
    def on_commit(self, plural: str, event_type: str, obj: dict[str, Any]) -> None:
        if plural == "secrets" and event_type != "DELETED" and obj.get("type") == SA_TOKEN_TYPE:
            if not (obj.get("data") or {}).get("token"):
                meta = obj["metadata"]
                self._schedule(self._populate(meta.get("namespace", ""), meta["name"]))
        elif plural == "serviceaccounts" and event_type == "DELETED":
            meta = obj["metadata"]
            self._schedule(self._remove_tokens_of(meta.get("namespace", ""), meta["name"]))

    def _schedule(self, work: Any) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a write outside any loop (a synchronous test): nothing to run on
            work.close()
            return
        task = loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def idle(self) -> None:
        """Wait until every queued piece of work is done (for tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _populate(self, namespace: str, name: str) -> None:
        try:
            secret = self.store.get_ref(self.secrets, namespace, name)
        except StatusError:
            return
        meta = secret["metadata"]
        annotations = meta.get("annotations") or {}
        account_name = annotations.get(SA_NAME_KEY, "")
        try:
            account = self.store.get_ref(self.accounts, namespace, account_name)
        except StatusError:
            account = None
        account_uid = (account or {}).get("metadata", {}).get("uid", "")
        wanted_uid = annotations.get(SA_UID_KEY)
        if account is None or (wanted_uid and wanted_uid != account_uid):
            await self._delete(namespace, name, meta.get("uid", ""))
            return
        token = self.signer.issue_legacy(namespace, account_name, account_uid, name)
        patch = {
            "metadata": {"annotations": {SA_UID_KEY: account_uid}},
            "data": {
                "token": _b64(token),
                "ca.crt": _b64(self.ca_pem()),
                "namespace": _b64(namespace),
            },
        }
        with contextlib.suppress(StatusError):
            await self.store.patch(self.secrets, namespace, name, patch, "merge")

    async def _remove_tokens_of(self, namespace: str, account: str) -> None:
        items, _rv = self.store.list_refs(self.secrets, namespace)
        for secret in list(items):
            meta = secret["metadata"]
            if (
                secret.get("type") == SA_TOKEN_TYPE
                and (meta.get("annotations") or {}).get(SA_NAME_KEY) == account
            ):
                await self._delete(namespace, meta["name"], meta.get("uid", ""))

    async def _delete(self, namespace: str, name: str, uid: str) -> None:
        with contextlib.suppress(StatusError):
            await self.store.delete(
                self.secrets, namespace, name, preconditions={"uid": uid} if uid else None
            )
