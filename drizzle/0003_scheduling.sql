ALTER TYPE "public"."post_status" ADD VALUE 'scheduled' BEFORE 'published';--> statement-breakpoint
ALTER TABLE "outbox" ADD COLUMN "run_at" timestamp (3) with time zone;