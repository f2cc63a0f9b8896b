"""Milvus's users, roles and grants: read for a backup (``rbac``), added back by a restore.

A Milvus that serves ``BackupRBAC``/``RestoreRBAC`` gives and takes everything in one call,
users' stored (encrypted) passwords included: milvus-backup works the same way
(``core/backup/rbac.go``; ``core/restore/task.go`` ``restoreRBAC``). An older Milvus (2.3)
answers only the select calls: users, roles, their bindings and the grants of each role in
each database are read, but never a password, so a user missing from the target cannot be
created: the restore refuses it by name before writing anything.

A restore only adds what the target lacks (milvus-backup's ``core/restore/conv``): existing
users keep their passwords, nothing is revoked or removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from pymilvus.grpc_gen import milvus_pb2

from . import codec
from .errors import InvalidRequestError
from .meta import GrantEntity, RBACMeta, RoleEntity, UserInfo
from .milvus import Milvus


def read_rbac(milvus: Milvus) -> RBACMeta:
    """Everything RBAC the connected Milvus holds, in milvus-backup's record."""
    served = milvus.backup_rbac()
    if served is not None:
        return codec.decode(RBACMeta, _to_dict(served), "BackupRBAC")
    bindings = milvus.users_and_roles()
    users = [
        UserInfo(user=name, roles=[RoleEntity(role) for role in bindings.get(name, [])])
        for name in milvus.list_users()
    ]
    roles = milvus.roles()
    grants: dict[tuple[str, ...], GrantEntity] = {}
    for role in roles:
        for db in milvus.list_databases():
            for found in milvus.grants(role, db):
                grant = codec.decode(GrantEntity, _to_dict(found), "SelectGrant")
                grants.setdefault(_grant_key(grant), grant)
    return RBACMeta(users=users, roles=[RoleEntity(r) for r in roles], grants=list(grants.values()))


@dataclass
class RbacPlan:
    """What a restore adds to the target: only what it lacks."""

    users: list[UserInfo] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    bindings: list[tuple[str, str]] = field(default_factory=list)  # (user, role)
    grants: list[GrantEntity] = field(default_factory=list)

    def describe(self) -> str:
        counts = (
            f"{len(self.users)} users, {len(self.roles)} roles, "
            f"{len(self.bindings)} role bindings, {len(self.grants)} grants"
        )
        return f"RBAC: add {counts}" if any(vars(self).values()) else "RBAC: nothing to add"


def plan_rbac(milvus: Milvus, backup: RBACMeta | None, backup_name: str) -> RbacPlan:
    """What restoring ``backup`` would add to the connected Milvus; refuse what it cannot."""
    if backup is None:
        raise InvalidRequestError(
            f"backup {backup_name!r} holds no users, roles or grants (it was taken without "
            "rbac): restore without rbac"
        )
    if not milvus.config.user:
        raise InvalidRequestError(
            f"restoring users, roles and grants into Milvus at {milvus.config.endpoint} needs "
            "the credentials of a user allowed to grant (milvus.user and milvus.password): "
            "Milvus grants privileges only to an authenticated caller; nothing was written"
        )
    current = read_rbac(milvus)
    have_users = {u.user: {r.name for r in u.roles} for u in current.users}
    have_roles = {r.name for r in current.roles}
    have_grants = {_grant_key(g) for g in current.grants}
    new_users = [u for u in backup.users if u.user not in have_users]
    _refuse_unrestorable_users(milvus, new_users, served=milvus.backup_rbac() is not None)
    new_roles = [r.name for r in backup.roles if r.name not in have_roles]
    return RbacPlan(
        users=new_users,
        roles=list(dict.fromkeys(new_roles)),
        bindings=[
            (u.user, r.name)
            for u in backup.users
            if u.user in have_users
            for r in u.roles
            if r.name not in have_users[u.user]
        ],
        grants=[g for g in backup.grants if _grant_key(g) not in have_grants],
    )


def apply_rbac(milvus: Milvus, plan: RbacPlan) -> None:
    """Add what ``plan`` holds: in one ``RestoreRBAC`` where Milvus serves it, else call by call
    (roles, bindings of existing users, grants)."""
    if plan.users:  # only planned where RestoreRBAC is served (passwords are stored ones)
        roles = [RoleEntity(r) for r in plan.roles]
        meta = RBACMeta(users=plan.users, roles=roles, grants=plan.grants)
        milvus.restore_rbac(json_format.ParseDict(codec.encode(meta), milvus_pb2.RBACMeta()))
    else:
        for role in plan.roles:
            milvus.create_role(role)
        for grant in plan.grants:
            proto = json_format.ParseDict(codec.encode(grant), milvus_pb2.GrantEntity())
            milvus.grant(proto)
    for user, role in plan.bindings:
        milvus.bind_role(user, role)


def _refuse_unrestorable_users(milvus: Milvus, users: list[UserInfo], served: bool) -> None:
    where = f"Milvus at {milvus.config.endpoint}"
    if not users:
        return
    names = ", ".join(sorted(u.user for u in users))
    if not all(u.password for u in users):
        raise InvalidRequestError(
            f"users {names} are missing in {where} and the backup holds no password for "
            "them (it was taken from a Milvus that does not give them out: before 2.5): "
            "create them there first, then restore again; their roles and grants are restored"
        )
    if not served:
        raise InvalidRequestError(
            f"users {names} are missing in {where}, which cannot take stored passwords (no "
            "RestoreRBAC: Milvus before 2.5): create them there first, then restore again"
        )


def _grant_key(grant: GrantEntity) -> tuple[str, ...]:
    """A grant's identity: which privilege on which object, to which role, in which database
    (who granted it does not matter)."""
    grantor = grant.grantor
    return (
        grant.object.name if grant.object else "",
        grant.object_name,
        grant.role.name if grant.role else "",
        grantor.privilege.name if grantor and grantor.privilege else "",
        grant.db_name,
    )


def _to_dict(message: Any) -> dict[str, Any]:
    return dict(json_format.MessageToDict(message, preserving_proto_field_name=True))
