"""``profile_list``, the options form and the validation of ``user_options``.

A hub offers a menu of environments (``profile_list``); a user picks one on the spawn
page or names one in the JSON body of ``POST /hub/api/users/:name/servers/:server``.
Both ways end in the same function, :func:`select_profile`, so the form and the REST
API accept and refuse exactly the same things. A refusal is a tornado
``HTTPError(400)`` whose message names the field and the allowed values: a user who
asked for something that does not exist gets told so, never a server started with a
silently substituted default.

Order in which configuration reaches a spawner (JupyterHub >= 5.3)
------------------------------------------------------------------
1. ``group_overrides`` (JupyterHub, broad per-group defaults);
2. the chosen profile's ``kubespawner_override``, then each chosen option's
   ``kubespawner_override`` in the order the options are listed (this module);
3. ``apply_user_options`` (operator code);
4. ``pre_spawn_hook`` (operator code);
5. ``start()``.

Why: a profile is the user's choice *within* the menu the operator configured, so it
is more specific than a group default and wins over it; but operator code must keep
the last word (clamp resources, add a volume for some users, refuse a combination), and
it should see the profile's result rather than have it silently overwrite its work
afterwards. Upstream KubeSpawner applies profiles inside ``start()``, after
``pre_spawn_hook``, so a profile silently wins over the hook; we deliberately do not.
Validation also happens before any operator hook runs, so hooks only ever see valid
choices. Step 2 runs from :meth:`ProfilesMixin.apply_group_overrides` (JupyterHub
calls it first and lets an ``HTTPError`` through to the API caller);
:meth:`ProfilesMixin.run_pre_spawn_hook` and ``start()`` call the idempotent
:meth:`ProfilesMixin.load_user_options` as well, so on a JupyterHub without group
overrides the profile still applies exactly once and still before ``pre_spawn_hook``.

Merging follows upstream: a dict override is merged recursively into a dict setting
(``None`` deletes a key), anything else replaces the setting; a callable override is
called with the spawner (it may be async) and its result used. A callable (or a
``profile_list`` callable) that raises tornado's ``HTTPError`` answers the user with it
(e.g. 403 "no GPU quota left"); any other exception is a configuration error
(:class:`ProfileOverrideError` / :class:`ProfileListError`, a 500 whose details go to
the hub log). ``{value}`` in an
``unlisted_choice.kubespawner_override`` is replaced by the user's free text, in
strings nested at any depth of dicts and lists (other ``{...}`` fields are left for the
settings' own template expansion, and doubled braces are unescaped, as upstream). The
text itself is data: the settings' later template expansion never parses it
(:class:`~async_kubespawner.objects.slugs.FilledTemplate`). Free text must match
``validation_regex`` as a whole (``re.fullmatch``, the same semantics as the form's
HTML ``pattern``).

The resolved choice (profile and every option, defaults filled in) is kept in the
spawner state under ``profile_selection`` so that a restarted hub knows what each
running server was started with.

Modules: :mod:`.model` (the pure model: normalising ``profile_list``, validating
``user_options``, merging overrides), :mod:`.form` (rendering the form) and
:mod:`.mixin` (the spawner's traits and the application of a choice). Every name is
importable from this package.
"""

from .mixin import ProfilesMixin
from .model import (
    LEGACY_UNLISTED_CHOICE,
    PROFILE_FIELD,
    STATE_KEY,
    UNLISTED_CHOICE,
    UNLISTED_SUFFIX,
    OptionSelection,
    ProfileListError,
    ProfileOverrideError,
    ProfileSelection,
    UserOptionsError,
    default_profile,
    form_data_to_user_options,
    merge_override,
    normalize_profile_list,
    preselect,
    select_profile,
    substitute_unlisted_value,
)

__all__ = [
    "LEGACY_UNLISTED_CHOICE",
    "PROFILE_FIELD",
    "STATE_KEY",
    "UNLISTED_CHOICE",
    "UNLISTED_SUFFIX",
    "OptionSelection",
    "ProfileListError",
    "ProfileOverrideError",
    "ProfileSelection",
    "ProfilesMixin",
    "UserOptionsError",
    "default_profile",
    "form_data_to_user_options",
    "merge_override",
    "normalize_profile_list",
    "preselect",
    "select_profile",
    "substitute_unlisted_value",
]
