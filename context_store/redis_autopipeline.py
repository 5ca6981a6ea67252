"""A redis-py client whose commands, issued by concurrent turns in the same
moment, travel to Redis together."""

from __future__ import annotations

import redis.asyncio as aioredis


class AutoPipelineRedis(aioredis.Redis):
    """redis-py's asyncio client; see the module docstring."""
