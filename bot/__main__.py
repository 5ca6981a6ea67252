import sys

from bot.assembly.cli import main

sys.exit(main())
