CREATE TABLE "outbox" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"tenant_id" uuid,
	"queue" text NOT NULL,
	"name" text NOT NULL,
	"payload" jsonb NOT NULL,
	"idempotency_key" text NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"claimed_until" timestamp (3) with time zone,
	"dispatched_at" timestamp (3) with time zone,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text
);
--> statement-breakpoint
CREATE TABLE "processed_jobs" (
	"idempotency_key" text PRIMARY KEY NOT NULL,
	"queue" text NOT NULL,
	"job_id" text NOT NULL,
	"processed_at" timestamp (3) with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "platform_admin" boolean DEFAULT false NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "outbox_idempotency_key_key" ON "outbox" USING btree ("idempotency_key");--> statement-breakpoint
CREATE INDEX "outbox_pending_idx" ON "outbox" USING btree ("id") WHERE dispatched_at is null;--> statement-breakpoint
CREATE INDEX "outbox_dispatched_at_idx" ON "outbox" USING btree ("dispatched_at");--> statement-breakpoint
CREATE INDEX "processed_jobs_processed_at_idx" ON "processed_jobs" USING btree ("processed_at");--> statement-breakpoint
-- Tenant-scoped writes (publishing a post, later) record their work under the tenant role; the
-- relay and the workers read and mark rows as the owner. quire_app may only insert its own
-- tenant's rows and can read none back.
GRANT INSERT ON outbox TO quire_app;--> statement-breakpoint
GRANT USAGE ON SEQUENCE outbox_id_seq TO quire_app;--> statement-breakpoint
ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE outbox FORCE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE POLICY outbox_owner_all ON outbox TO CURRENT_USER USING (true) WITH CHECK (true);--> statement-breakpoint
CREATE POLICY outbox_tenant_insert ON outbox FOR INSERT TO quire_app WITH CHECK (tenant_id = app_current_tenant());--> statement-breakpoint
REVOKE ALL ON processed_jobs FROM quire_app;
