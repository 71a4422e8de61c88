"""The long-lived parts every use case needs, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

from api.config import Settings
from api.security.passwords import PasswordHasher
from api.security.sealing import Sealer
from api.security.tokens import TokenService
from api.services.activity import SessionActivity
from api.services.delivery import DeliveryWorker, mailer_for
from api.services.events import UserEvents
from api.store import Database


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    hasher: PasswordHasher
    tokens: TokenService
    events: UserEvents
    delivery: DeliveryWorker
    activity: SessionActivity
    sealer: Sealer

    @classmethod
    def build(cls, settings: Settings) -> Services:
        db = Database(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            connect_timeout=settings.db_connect_timeout,
            statement_timeout=settings.db_statement_timeout,
            server_prepared=settings.db_server_prepared,
        )
        # Secrets a rotation retired: still accepted for what they signed or sealed.
        previous = (settings.previous_secret_key,) if settings.previous_secret_key else ()
        sealer = Sealer(settings.secret_key, previous)
        return cls(
            settings=settings,
            db=db,
            events=UserEvents(settings.listen_url),
            delivery=DeliveryWorker(
                db, mailer_for(settings.mailer, show_secrets=settings.dev), sealer
            ),
            sealer=sealer,
            activity=SessionActivity(db),
            hasher=PasswordHasher(
                memory_kib=settings.argon2_memory_kib,
                time_cost=settings.argon2_time_cost,
                parallelism=settings.argon2_parallelism,
                threads=settings.hash_threads,
            ),
            tokens=TokenService(
                settings.secret_key,
                issuer=settings.issuer,
                previous_secrets=previous,
            ),
        )

    async def start(self) -> None:
        """Background work of a serving instance: outbox delivery and change notifications."""
        self.delivery.start()
        await self.events.start()

    async def close(self) -> None:
        await self.activity.close()
        await self.delivery.stop()
        await self.events.stop()
        self.hasher.close()
        await self.db.dispose()
