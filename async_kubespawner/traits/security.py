"""Who the notebook runs as and what it may do."""

import kubernetes_asyncio.client as k8s
from jupyterhub.traitlets import Callable
from traitlets import Bool, Dict, Enum, Integer, List, Unicode, Union, validate
from traitlets.config import LoggingConfigurable

from ..objects.manifests import SECURITY_PROFILES
from .validation import CONTENT_FIELDS, check_camel_case_fields, check_template


class SecurityTraits(LoggingConfigurable):
    service_account = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""Service account the pod runs as (serviceAccountName). Templated. With
        one set, its token is mounted (see automount_service_account_token).""",
    )
    automount_service_account_token = Bool(
        None,
        allow_none=True,
        config=True,
        help="""Mount the service account's API token in the pod. None mounts it only
        when service_account is set, so user code gets no API credentials by default.""",
    )
    uid = Union(
        [Integer(), Callable()],
        default_value=None,
        allow_none=True,
        config=True,
        help="""User id the notebook container runs as (runAsUser). May be a callable
        ``f(spawner) -> int``, sync or async. None uses the image's user.""",
    )
    gid = Union(
        [Integer(), Callable()],
        default_value=None,
        allow_none=True,
        config=True,
        help="""Group id of the notebook container's process (runAsGroup). May be a
        callable, sync or async.""",
    )
    fs_gid = Union(
        [Integer(), Callable()],
        default_value=None,
        allow_none=True,
        config=True,
        help="""Group that owns mounted volumes (pod fsGroup), so a non-root notebook can
        write to them. May be a callable, sync or async.""",
    )
    supplemental_gids = Union(
        [List(Integer()), Callable()],
        default_value=[],
        config=True,
        help="""Extra groups of the pod's processes (supplementalGroups). May be a
        callable returning a list, sync or async.""",
    )
    privileged = Bool(
        False,
        config=True,
        help="Run the notebook container privileged (full access to the node). Rarely wise.",
    )
    allow_privilege_escalation = Bool(
        False,
        allow_none=True,
        config=True,
        help="""allowPrivilegeEscalation of the notebook container: whether a process can
        gain more privileges than its parent (setuid binaries such as sudo). None leaves
        it unset.""",
    )
    container_security_context = Union(
        [Dict(), Callable()],
        default_value={},
        config=True,
        help="""securityContext of the notebook container, in camelCase, merged over
        what uid, gid, privileged and allow_privilege_escalation produce. May be a
        callable, sync or async.""",
    )
    pod_security_context = Union(
        [Dict(), Callable()],
        default_value={},
        config=True,
        help="""securityContext of the pod, in camelCase, merged over what fs_gid and
        supplemental_gids produce. May be a callable, sync or async.""",
    )
    # Beyond upstream.
    security_profile = Enum(
        list(SECURITY_PROFILES),
        default_value="",
        config=True,
        help="""The Kubernetes Pod Security Standard every user pod must pass.
        'restricted' sets what the standard requires of every container (seccomp
        RuntimeDefault, all capabilities dropped, runAsNonRoot, no privilege escalation);
        'baseline' sets nothing. With either, the final pod (after every override,
        profile and modify_pod_hook) is checked against every control of the level
        before anything is created, and refused with the control's name and the fix.
        '' (default) checks nothing.""",
    )
    api_token_in_secret = Bool(
        False,
        config=True,
        help="""Hand the hub API token to the pod through a per-pod Secret (owned by the
        pod, read with secretKeyRef) instead of as a literal env value in the pod spec,
        where anyone allowed to read pods could see it.""",
    )

    @validate("service_account")
    def _check_service_account(self, proposal):
        if proposal.value is not None:
            check_template("service_account", proposal.value, CONTENT_FIELDS)
        return proposal.value

    @validate("container_security_context")
    def _check_container_security_context(self, proposal):
        if isinstance(proposal.value, dict):
            check_camel_case_fields(
                "container_security_context",
                proposal.value,
                k8s.V1SecurityContext,
                "SecurityContext",
            )
        return proposal.value

    @validate("pod_security_context")
    def _check_pod_security_context(self, proposal):
        if isinstance(proposal.value, dict):
            check_camel_case_fields(
                "pod_security_context",
                proposal.value,
                k8s.V1PodSecurityContext,
                "PodSecurityContext",
            )
        return proposal.value
