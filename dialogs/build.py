"""The dialog policy from Segue's settings."""

from __future__ import annotations

import logging
from typing import Any

from bot.core.errors import ConfigError
from dialogs.actions import ActionRunner, InProcessActions, RemoteActions
from dialogs.check import check_dialogs
from dialogs.nlu import BuiltinNlu, EntityExtractor, Nlu, RasaNlu
from dialogs.runtime import DialogPolicy

log = logging.getLogger(__name__)


def build_dialog_policy(settings: Any) -> DialogPolicy:
    """Dialogs loaded and checked, NLU trained for every language, actions
    in-process or on the configured action server."""
    remote = settings.action_server_url
    dialogs, problems = check_dialogs(settings.dialogs_dir, in_process_actions=remote is None)
    if dialogs is None:
        errors = [p for p in problems if not p.warning]
        raise ConfigError("invalid dialogs:\n" + "\n".join(str(p) for p in errors))
    if problems:
        log.warning("the dialogs have %d warning(s), such as a missing translation; "
                    "`segue check` lists them", len(problems))
    nlu: Nlu
    if settings.nlu_url:
        extractor = EntityExtractor(dialogs.entities.values())
        nlu = RasaNlu(
            settings.nlu_url, extractor=extractor, timeout_seconds=settings.action_timeout_seconds
        )
    else:
        intents = [*dialogs.intents.values()]
        for translated in dialogs.translated_intents.values():
            intents.extend(translated.values())
        nlu = BuiltinNlu(intents, dialogs.entities.values())
    actions: ActionRunner | None = None
    if remote:
        actions = RemoteActions(remote, timeout_seconds=settings.action_timeout_seconds)
    elif dialogs.actions.module is not None:
        actions = InProcessActions.from_module(dialogs.actions.module, settings)
    return DialogPolicy(
        dialogs=dialogs, nlu=nlu, actions=actions, threshold=settings.nlu_threshold
    )
