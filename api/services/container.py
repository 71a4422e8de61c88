"""The long-lived parts every use case needs, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

from api.config import Settings
from api.security.passwords import PasswordHasher
from api.security.tokens import TokenService
from api.store import Database


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    hasher: PasswordHasher
    tokens: TokenService

    @classmethod
    def build(cls, settings: Settings) -> Services:
        return cls(
            settings=settings,
            db=Database(
                settings.database_url,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_max_overflow,
                pool_timeout=settings.db_pool_timeout,
            ),
            hasher=PasswordHasher(
                memory_kib=settings.argon2_memory_kib,
                time_cost=settings.argon2_time_cost,
                parallelism=settings.argon2_parallelism,
                threads=settings.hash_threads,
            ),
            tokens=TokenService(
                settings.secret_key,
                issuer=settings.issuer,
                previous_secrets=(
                    (settings.previous_secret_key,) if settings.previous_secret_key else ()
                ),
            ),
        )

    async def close(self) -> None:
        self.hasher.close()
        await self.db.dispose()
