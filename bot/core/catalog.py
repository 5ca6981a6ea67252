"""The product's own sentences, outside any bot's dialogs, in each language it speaks.

The handoff notices, the linking answers, the apology of a failed turn and
the "where we left off" prefix are Segue's, not a bot's: a bot translates its
dialogs in YAML, and these follow the conversation's language
(`ConversationState.locale`) the same way. German says "du" and Spanish "tú",
as the demo bot's own replies do; the "where we left off" prefixes are those of
the dialogs' `utter_pattern_resume`, so a question asked again reads the same
whichever side asks it.
"""

from __future__ import annotations

import unicodedata
from string import Formatter

ENGLISH = "en"
LANGUAGES = (ENGLISH, "de", "es")

# Typed answers to a yes/no question, in every language: the person may
# answer in the one they use, whatever the conversation's language says.
YES_WORDS = frozenset({"yes", "y", "ja", "j", "sí", "si"})
NO_WORDS = frozenset({"no", "n", "nein"})
# The only typed yes that confirms what cannot be undone (erasing a customer),
# as read by `plain_answer`: a plain yes in any language, nothing looser.
# "ok", "sure", "vale" or "claro" are as often a shrug, and "y" or "j" a slip.
EXPLICIT_YES_WORDS = frozenset({
    "yes", "yes please", "yes i am sure", "yes im sure", "yes do it",
    "ja", "ja bitte", "ja ich bin sicher", "ja mach das",
    "si", "si por favor", "si estoy seguro", "si estoy segura", "si hazlo",
})

SENTENCES: dict[str, dict[str, str]] = {
    # A turn that failed; a question asked again.
    "apology": {
        "en": "Sorry, something went wrong on our side. Please try again in a moment.",
        "de": "Entschuldige, bei uns ist etwas schiefgelaufen. Bitte versuch es gleich noch "
              "einmal.",
        "es": "Lo siento, algo salió mal por nuestra parte. Inténtalo de nuevo en un momento, "
              "por favor.",
    },
    "where_we_left_off": {
        "en": "Where we left off: {text}",
        "de": "Weiter, wo wir stehen geblieben sind: {text}",
        "es": "Seguimos donde lo dejamos: {text}",
    },
    # Handoff to people.
    "handoff_asked": {
        "en": "A person from our team will take over this conversation shortly.",
        "de": "Jemand aus unserem Team übernimmt dieses Gespräch in Kürze.",
        "es": "Una persona de nuestro equipo se hará cargo de esta conversación en breve.",
    },
    "too_many_handoffs": {
        "en": "You have asked for a person several times just now, so I cannot queue this "
              "request. Please try again in a while, or tell me what you need.",
        "de": "Du hast gerade mehrmals nach einem Menschen gefragt, deshalb kann ich diese "
              "Anfrage nicht in die Warteschlange stellen. Bitte versuch es später noch einmal "
              "oder sag mir, was du brauchst.",
        "es": "Acabas de pedir hablar con una persona varias veces, así que no puedo poner esta "
              "solicitud en la cola. Inténtalo de nuevo dentro de un rato o dime qué necesitas.",
    },
    "nobody_online": {
        "en": "No agent is online right now. Our team is available {business_hours}. Leave "
              "your message here and a person will answer as soon as they are back.",
        "de": "Gerade ist niemand aus unserem Team online. Unser Team ist zu diesen Zeiten "
              "erreichbar: {business_hours}. Hinterlass deine Nachricht hier, dann antwortet "
              "dir jemand, sobald wir wieder da sind.",
        "es": "Ahora mismo no hay nadie de nuestro equipo conectado. Nuestro equipo está "
              "disponible en este horario: {business_hours}. Deja tu mensaje aquí y una persona "
              "te responderá en cuanto vuelva.",
    },
    "next_in_line": {
        "en": "You're next in line.",
        "de": "Du bist als Nächstes dran.",
        "es": "Tu turno es el siguiente.",
    },
    "one_ahead": {
        "en": "1 person is waiting ahead of you.",
        "de": "Vor dir wartet 1 Person.",
        "es": "Hay 1 persona esperando antes que tú.",
    },
    "many_ahead": {
        "en": "{ahead} people are waiting ahead of you.",
        "de": "Vor dir warten {ahead} Personen.",
        "es": "Hay {ahead} personas esperando antes que tú.",
    },
    "agent_joined": {
        "en": "{agent} from our team has joined the conversation.",
        "de": "{agent} aus unserem Team ist dem Gespräch beigetreten.",
        "es": "{agent}, de nuestro equipo, se ha unido a la conversación.",
    },
    "agent_taking_over": {
        "en": "{agent} from our team is taking over this conversation.",
        "de": "{agent} aus unserem Team übernimmt jetzt dieses Gespräch.",
        "es": "{agent}, de nuestro equipo, se hace cargo ahora de esta conversación.",
    },
    "agent_closed": {
        "en": "{agent} closed this conversation. Write here any time if you need anything else.",
        "de": "{agent} hat dieses Gespräch beendet. Schreib jederzeit hier, wenn du noch etwas "
              "brauchst.",
        "es": "{agent} ha cerrado esta conversación. Escribe aquí cuando quieras si necesitas "
              "algo más.",
    },
    "back_with_the_bot": {
        "en": "You're back with our assistant. Ask for a person again at any time.",
        "de": "Du bist wieder bei unserem Assistenten. Du kannst jederzeit wieder nach einem "
              "Menschen fragen.",
        "es": "Vuelves a estar con nuestro asistente. Puedes pedir hablar con una persona de "
              "nuevo cuando quieras.",
    },
    # The customer's rating of a conversation a person closed (`bot.handoff.rating`).
    "rating_question": {
        "en": "How did we do? Please rate this conversation from 1 (poor) to 5 (great).",
        "de": "Wie war's? Bitte bewerte dieses Gespräch von 1 (schlecht) bis 5 (super).",
        "es": "¿Qué tal lo hicimos? Valora esta conversación del 1 (mal) al 5 (genial), por "
              "favor.",
    },
    "rating_ask_comment": {
        "en": "Thank you for your rating! Anything you'd like to add? Write it here, or press "
              "No, thanks.",
        "de": "Danke für deine Bewertung! Möchtest du noch etwas ergänzen? Schreib es hier "
              "oder tippe auf Nein, danke.",
        "es": "¡Gracias por tu valoración! ¿Quieres añadir algo? Escríbelo aquí o pulsa No, "
              "gracias.",
    },
    "rating_skip_button": {"en": "No, thanks", "de": "Nein, danke", "es": "No, gracias"},
    "rating_thanks": {"en": "Thank you!", "de": "Danke!", "es": "¡Gracias!"},
    "rating_comment_thanks": {
        "en": "Thank you, we've passed it on.",
        "de": "Danke, wir haben es weitergegeben.",
        "es": "Gracias, se lo hemos hecho llegar al equipo.",
    },
    "rating_closed": {
        "en": "That rating has closed, thank you.",
        "de": "Diese Bewertung ist abgeschlossen, danke.",
        "es": "Esa valoración ya está cerrada, gracias.",
    },
    "rating_already_given": {
        "en": "You've already rated this conversation, thank you.",
        "de": "Du hast dieses Gespräch schon bewertet, danke.",
        "es": "Ya has valorado esta conversación, gracias.",
    },
    # Erasing one's data while a person holds the conversation.
    "erase_confirm": {
        "en": "This erases your messages and everything we know about you, on every channel, "
              "and ends this conversation with our team. Are you sure?",
        "de": "Damit werden deine Nachrichten und alles, was wir über dich wissen, auf allen "
              "Kanälen gelöscht, und dein Gespräch mit unserem Team endet. Bist du sicher?",
        "es": "Esto borra tus mensajes y todo lo que sabemos de ti, en todos los canales, y "
              "termina esta conversación con nuestro equipo. ¿Seguro que quieres hacerlo?",
    },
    "erase_yes_button": {"en": "Yes, forget me", "de": "Ja, vergiss mich", "es": "Sí, olvídame"},
    "erase_no_button": {"en": "No", "de": "Nein", "es": "No"},
    "erase_done": {
        "en": "Done: everything we knew about you is erased, on every channel.",
        "de": "Erledigt: Alles, was wir über dich wussten, ist auf allen Kanälen gelöscht.",
        "es": "Listo: todo lo que sabíamos de ti está borrado, en todos los canales.",
    },
    "erase_kept": {
        "en": "OK, nothing was erased. Our team is still with you.",
        "de": "Alles klar, es wurde nichts gelöscht. Unser Team ist weiter für dich da.",
        "es": "De acuerdo, no se ha borrado nada. Nuestro equipo sigue contigo.",
    },
    # Linking channels. The commands (`link`, `unlink`) are typed as they are
    # in every language, as the demo bot's replies tell people to.
    "web_chat": {"en": "web chat", "de": "Web-Chat", "es": "chat web"},
    "a_web_chat": {"en": "A web chat", "de": "Ein Web-Chat", "es": "Un chat web"},
    "a_chat_on": {"en": "A {channel} chat", "de": "Ein {channel}-Chat",
                  "es": "Un chat de {channel}"},
    "one_or_other": {"en": "{first} or {last}", "de": "{first} oder {last}",
                     "es": "{first} o {last}"},
    "link_codes_too_many": {
        "en": "You have asked for several link codes just now. Please use the last one, or ask "
              "again in an hour.",
        "de": "Du hast gerade mehrere Link-Codes angefordert. Bitte nimm den letzten oder frag "
              "in einer Stunde noch einmal.",
        "es": "Acabas de pedir varios códigos de enlace. Usa el último, por favor, o vuelve a "
              "pedirlo dentro de una hora.",
    },
    "link_code_failed": {
        "en": "Sorry, I could not make a code just now. Please try again.",
        "de": "Tut mir leid, ich konnte gerade keinen Code erstellen. Bitte versuch es noch "
              "einmal.",
        "es": "Lo siento, ahora mismo no he podido crear un código. Inténtalo de nuevo, por "
              "favor.",
    },
    "link_code_issued": {
        "en": "Your link code is {code}. Within {minutes} minutes, send “link {code}” from the "
              "other channel ({channels}) to continue this conversation there. Never give this "
              "code to anyone else: whoever uses it will see this conversation.",
        "de": "Dein Link-Code ist {code}. Schick innerhalb von {minutes} Minuten „link {code}“ "
              "vom anderen Kanal ({channels}), um dieses Gespräch dort fortzusetzen. Gib diesen "
              "Code niemals an jemand anderen weiter: Wer ihn benutzt, sieht dieses Gespräch.",
        "es": "Tu código de enlace es {code}. En los próximos {minutes} minutos, envía “link "
              "{code}” desde el otro canal ({channels}) para seguir esta conversación allí. No "
              "le des nunca este código a nadie: quien lo use verá esta conversación.",
    },
    "continue_on_telegram": {"en": "Continue on Telegram", "de": "Auf Telegram weitermachen",
                             "es": "Seguir en Telegram"},
    "continue_on_web": {"en": "Continue on the web", "de": "Im Web weitermachen",
                        "es": "Seguir en la web"},
    "link_codes_wait": {
        "en": "Too many wrong link codes. Please wait a few minutes before you try again, and "
              "check the code on the channel you came from.",
        "de": "Zu viele falsche Link-Codes. Bitte warte ein paar Minuten, bevor du es noch "
              "einmal versuchst, und prüf den Code auf dem Kanal, von dem du kommst.",
        "es": "Demasiados códigos de enlace incorrectos. Espera unos minutos antes de volver a "
              "intentarlo y revisa el código en el canal del que vienes.",
    },
    "link_code_invalid": {
        "en": "That code is not valid or has expired. Send “link” on the channel you came from "
              "to get a new one.",
        "de": "Dieser Code ist ungültig oder abgelaufen. Schick „link“ auf dem Kanal, von dem "
              "du kommst, um einen neuen zu bekommen.",
        "es": "Ese código no es válido o ha caducado. Envía “link” en el canal del que vienes "
              "para recibir uno nuevo.",
    },
    "link_code_used": {
        "en": "That code has expired or was used already. Send “link” on the other channel to "
              "get a new one.",
        "de": "Dieser Code ist abgelaufen oder wurde schon benutzt. Schick „link“ auf dem "
              "anderen Kanal, um einen neuen zu bekommen.",
        "es": "Ese código ha caducado o ya se ha usado. Envía “link” en el otro canal para "
              "recibir uno nuevo.",
    },
    "link_invalid": {
        "en": "That is not a valid link. Send “link” on the channel you came from to get a new "
              "one, or just tell me what you need.",
        "de": "Das ist kein gültiger Link. Schick „link“ auf dem Kanal, von dem du kommst, um "
              "einen neuen zu bekommen, oder sag mir einfach, was du brauchst.",
        "es": "Ese enlace no es válido. Envía “link” en el canal del que vienes para recibir "
              "uno nuevo, o simplemente dime qué necesitas.",
    },
    "link_used": {
        "en": "That link has expired or has been used already. Send “link” on the other "
              "channel to get a new one.",
        "de": "Dieser Link ist abgelaufen oder wurde schon benutzt. Schick „link“ auf dem "
              "anderen Kanal, um einen neuen zu bekommen.",
        "es": "Ese enlace ha caducado o ya se ha usado. Envía “link” en el otro canal para "
              "recibir uno nuevo.",
    },
    "link_already_joined": {
        "en": "This chat is already part of that conversation.",
        "de": "Dieser Chat gehört schon zu diesem Gespräch.",
        "es": "Este chat ya forma parte de esa conversación.",
    },
    "link_answer_yes_or_no": {
        "en": "Please answer yes or no.",
        "de": "Bitte antworte mit Ja oder Nein.",
        "es": "Por favor, responde sí o no.",
    },
    "link_from_code": {
        "en": "That code comes from a {channel} conversation.",
        "de": "Dieser Code stammt aus einem {channel}-Gespräch.",
        "es": "Ese código viene de una conversación de {channel}.",
    },
    "link_from_link": {
        "en": "You opened a link that comes from a {channel} conversation.",
        "de": "Du hast einen Link aus einem {channel}-Gespräch geöffnet.",
        "es": "Has abierto un enlace que viene de una conversación de {channel}.",
    },
    "link_consent": {
        "en": "If you say yes, this chat joins it: whoever is in that {channel} conversation "
              "will read this chat, its history and everything written here from now on. Say "
              "yes only if that {channel} conversation is yours.",
        "de": "Wenn du Ja sagst, wird dieser Chat damit verknüpft: Wer in diesem "
              "{channel}-Gespräch ist, liest diesen Chat, seinen Verlauf und alles, was ab "
              "jetzt hier geschrieben wird. Sag nur Ja, wenn dieses {channel}-Gespräch deins "
              "ist.",
        "es": "Si dices que sí, este chat se une a ella: quien esté en esa conversación de "
              "{channel} leerá este chat, su historial y todo lo que se escriba aquí a partir "
              "de ahora. Di que sí solo si esa conversación de {channel} es tuya.",
    },
    "link_yes_button": {"en": "Yes, link it", "de": "Ja, verknüpfen", "es": "Sí, vincúlalo"},
    "link_no_button": {"en": "No, don't link", "de": "Nein, nicht verknüpfen",
                       "es": "No, no lo vincules"},
    "link_declined": {
        "en": "OK, nothing was linked.",
        "de": "Alles klar, es wurde nichts verknüpft.",
        "es": "De acuerdo, no se ha vinculado nada.",
    },
    "link_target_gone": {
        "en": "That conversation no longer exists, so nothing was linked.",
        "de": "Dieses Gespräch gibt es nicht mehr, deshalb wurde nichts verknüpft.",
        "es": "Esa conversación ya no existe, así que no se ha vinculado nada.",
    },
    "link_done": {
        "en": "Linked! This chat now continues your {channel} conversation.",
        "de": "Verknüpft! Dieser Chat setzt jetzt dein {channel}-Gespräch fort.",
        "es": "¡Vinculado! Este chat continúa ahora tu conversación de {channel}.",
    },
    "link_chat_joined": {
        "en": "{chat}{who} joined this conversation. If that wasn't you, send “unlink "
              "{channel}”.",
        "de": "{chat}{who} ist diesem Gespräch beigetreten. Wenn du das nicht warst, schick "
              "„unlink {channel}“.",
        "es": "{chat}{who} se ha unido a esta conversación. Si no has sido tú, envía “unlink "
              "{channel}”.",
    },
    "link_channels": {
        "en": "This conversation is linked with: {names}. Send “unlink <channel>” ({channels}) "
              "to remove one.",
        "de": "Dieses Gespräch ist verknüpft mit: {names}. Schick „unlink <Kanal>“ "
              "({channels}), um einen davon zu entfernen.",
        "es": "Esta conversación está vinculada con: {names}. Envía “unlink <canal>” "
              "({channels}) para quitar uno.",
    },
    "link_none_linked": {
        "en": "No {channel} chat is linked.",
        "de": "Es ist kein {channel} verknüpft.",
        "es": "No hay ningún {channel} vinculado.",
    },
    "link_unlinked": {
        "en": "{channel} is no longer linked to this conversation; its next message starts a "
              "new one.",
        "de": "{channel} ist nicht mehr mit diesem Gespräch verknüpft; die nächste Nachricht "
              "von dort beginnt ein neues Gespräch.",
        "es": "Se ha desvinculado {channel} de esta conversación; el próximo mensaje desde allí "
              "empezará una conversación nueva.",
    },
}


def language(locale: str | None) -> str:
    """The catalog's language for a conversation's locale ("de-AT" -> "de"):
    English for none (the bot's default) and for one the catalog lacks."""
    if not locale:
        return ENGLISH
    primary = locale.split("-", 1)[0].split("_", 1)[0].lower()
    return primary if primary in LANGUAGES else ENGLISH


def text(key: str, locale: str | None, **values: object) -> str:
    """Sentence `key` in `locale`'s language (in English if it has no version
    in that language), its `{placeholders}` filled from `values`."""
    by_language = SENTENCES[key]
    return by_language.get(language(locale), by_language[ENGLISH]).format(**values)


def versions(key: str) -> set[str]:
    """Every language's version of `key`, as typed back by people."""
    return set(SENTENCES[key].values())


def placeholders(sentence: str) -> set[str]:
    """The `{names}` a sentence is filled with."""
    return {name for _, name, _, _ in Formatter().parse(sentence) if name is not None}


def plain_answer(typed: str) -> str:
    """A typed answer as its bare words: case, accents and punctuation gone,
    so "Sí, por favor!" reads "si por favor" and "Yes, forget me" "yes forget me"."""
    decomposed = unicodedata.normalize("NFKD", typed.casefold())
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join("".join(c if c.isalnum() else " " for c in letters).split())
