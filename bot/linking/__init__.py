"""One customer across channels: link codes, deep links, joining and separating chats."""
