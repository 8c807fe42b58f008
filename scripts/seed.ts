/**
 * `npm run seed`: a demo tenant with staff and posts, so a newcomer sees something at once.
 * Safe to run twice: an existing demo account is reported and left alone.
 */
import pino from 'pino';
import { createContainer } from '../src/composition.js';
import { ConfigError, loadConfig } from '../src/config.js';
import type { MemberRole } from '../src/platform/db/schema.js';

const PASSWORD = 'demo-password-123';
const staff: Array<{ email: string; name: string; role: MemberRole }> = [
  { email: 'owner@demo.quire.test', name: 'Olivia Owner', role: 'owner' },
  { email: 'editor@demo.quire.test', name: 'Eddie Editor', role: 'editor' },
  { email: 'author@demo.quire.test', name: 'Ava Author', role: 'author' },
  { email: 'viewer@demo.quire.test', name: 'Victor Viewer', role: 'viewer' },
];
const topics = ['Shipping', 'Hiring', 'Pricing', 'Onboarding', 'Security', 'Roadmap', 'Culture', 'Support'];

async function main() {
  const config = loadConfig();
  const container = await createContainer(config, { log: pino({ level: 'warn' }) });
  const { auth, tenants, posts } = container.services;
  try {
    if (await auth.findUserIdByEmail(staff[0]!.email)) {
      console.log(`Demo data is already there. Sign in as ${staff[0]!.email} / ${PASSWORD}`);
      return;
    }
    const users = [];
    for (const s of staff) users.push({ ...s, id: (await auth.register({ ...s, password: PASSWORD })).id });
    const owner = users[0]!;
    const tenant = await tenants.create(owner.id, { name: 'Demo Publication', slug: 'demo' });
    for (const u of users.slice(1)) await tenants.invite({ tenantId: tenant.id, userId: owner.id }, u);
    await tenants.updateSettings(
      { tenantId: tenant.id, userId: owner.id },
      { title: 'The Demo Publication', description: 'Notes from a made-up SaaS company', lang: 'en', timezone: 'UTC' },
    );
    const writers = users.filter((u) => u.role !== 'viewer');
    for (let i = 0; i < 24; i++) {
      const writer = writers[i % writers.length]!;
      const ctx = { tenantId: tenant.id, userId: writer.id };
      const topic = topics[i % topics.length]!;
      const post = await posts.create(ctx, {
        title: `${topic} notes, part ${Math.floor(i / topics.length) + 1}`,
        excerpt: `What we learned about ${topic.toLowerCase()} this quarter.`,
        body: `# ${topic}\n\nThis is a demo post about ${topic.toLowerCase()}.\n\nIt was written by ${writer.name}.`,
      });
      if (i % 3 !== 2) await posts.publish(ctx, post.id);
    }
    console.log(`Seeded tenant "demo" (id ${tenant.id}) with ${users.length} staff and 24 posts.`);
    console.log(`Sign in: POST /api/v1/auth/login {"email":"${owner.email}","password":"${PASSWORD}"}`);
    console.log(`Then send X-Tenant-ID: ${tenant.id}`);
  } finally {
    await container.close();
  }
}

main().catch((err) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
