"""Phrasings of the demo intents that are NOT in the training examples.

Kept apart from dialogs/demo/nlu.yml on purpose: the quality test fails if one
of them leaks into the examples.
"""

HELD_OUT: dict[str, list[str]] = {
    "greet": [
        "hey hey",
        "helo",
        "good morning to you",
        "hi bot",
        "hello, is anybody there",
        "hey, good evening",
        "hii",
    ],
    "help": [
        "what can this bot do",
        "which options do I have",
        "what can you help me with",
        "show me what you can do",
        "I need some help please",
    ],
    "order_status": [
        "wheres my order??",
        "where is my order right now",
        "where's my stuff",
        "any news about my order?",
        "I want to track my package",
        "whre is my ordr",
        "has my parcel shipped?",
        "when is my order arriving",
        "could you check the status of my order",
        "status of my delivery please",
        "my parcel still hasn't arrived",
        "I'd like to know where my package is",
        "is my package on the way",
        "what's the status of order A1003",
        "order tracking",
        "I haven't gotten my package yet",
        "when will my stuff be delivered",
        "track order",
    ],
    "human": [
        "I want to talk to a human",
        "can I talk to a real person",
        "connect me with a human agent",
        "I need to speak to someone",
        "get me an agent",
        "let me speak with a person please",
        "put me in touch with support staff",
        "talk to human",
        "is there someone real I can talk to",
        "I want a human not a bot",
        "transfer me to an agent",
        "speak to a representative",
    ],
    "forget_me": [
        "please delete my data",
        "forget about me",
        "erase everything about me",
        "I want you to delete all my data",
        "remove my data please",
        "delete my personal information",
        "forget everything i told you",
        "wipe all my info",
    ],
    "affirm": [
        "yes please do",
        "yeah sure",
        "yes, go ahead",
        "ok sure",
        "yup",
    ],
    "deny": [
        "no thank you",
        "nah",
        "no don't",
        "nope, cancel",
        "no way",
    ],
    "thanks": [
        "thank you so much",
        "thanks a bunch!",
        "awesome, thank you",
        "thanks for your help",
    ],
    "goodbye": [
        "bye then!",
        "goodbye for now",
        "see ya",
        "ok bye",
    ],
}

# Messages no demo intent fits: the classifier must stay under the threshold.
OUT_OF_SCOPE = [
    "what is the capital of france",
    "tell me a joke",
    "asdfghjkl",
    "i like turtles",
    "what's the weather tomorrow",
    "how old are you",
    "pizza",
    "play some music",
]
