"""Which namespace a user's objects live in."""

from functools import lru_cache
from pathlib import Path

from traitlets import Bool, Dict, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from .validation import (
    USER_FIELDS,
    check_template,
    metadata_validator,
)

SERVICE_ACCOUNT_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@lru_cache(maxsize=1)
def hub_namespace() -> str:
    """The namespace the hub runs in: its service account says, else ``default``.

    Read once per process: every template expansion needs it and it cannot change.
    """
    try:
        return SERVICE_ACCOUNT_NAMESPACE_FILE.read_text().strip() or "default"
    except OSError:
        return "default"


class NamespaceTraits(LoggingConfigurable):
    namespace = Unicode(
        config=True,
        help="""Namespace for the users' pods and PVCs. Defaults to the hub's own
        namespace (read from its service account), else 'default'. Remembered in each
        server's state, so changing it does not lose track of running servers.""",
    )

    @default("namespace")
    def _default_namespace(self) -> str:
        return hub_namespace()

    enable_user_namespaces = Bool(
        False,
        config=True,
        help="""Give every user a namespace of their own (user_namespace_template),
        created on first spawn. The hub then watches pods cluster-wide, which needs a
        ClusterRole instead of a Role.""",
    )
    user_namespace_template = Unicode(
        "{hubnamespace}-{username}",
        config=True,
        help="""Name of a user's namespace when enable_user_namespaces is on. Templated;
        {hubnamespace} is 'user' when the hub runs in 'default'.""",
    )
    user_namespace_labels = Dict(
        config=True,
        help="Labels put on a user namespace when it is created. Values are templated.",
    )
    user_namespace_annotations = Dict(
        config=True,
        help="Annotations put on a user namespace when it is created. Values are templated.",
    )

    @validate("user_namespace_template")
    def _check_user_namespace_template(self, proposal):
        check_template("user_namespace_template", proposal.value, USER_FIELDS)
        return proposal.value

    _check_namespace_metadata = metadata_validator(
        "user_namespace_labels", "user_namespace_annotations", USER_FIELDS
    )
