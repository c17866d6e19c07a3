"""Messages keep every source given to the model and where the answer came from; a review
decision keeps the user correction it accepted; sessions can be revoked server-side.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("session_version", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sources", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("origin", sa.String(length=20), nullable=True))
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("accepted_feedback_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("repeats", sa.Integer(), nullable=False, server_default="0"))
        batch_op.create_foreign_key(
            "fk_review_items_accepted_feedback_id",
            "feedback",
            ["accepted_feedback_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_version")
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.drop_constraint("fk_review_items_accepted_feedback_id", type_="foreignkey")
        batch_op.drop_column("accepted_feedback_id")
        batch_op.drop_column("repeats")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("origin")
        batch_op.drop_column("sources")
