import { html, layout, type RenderedMail } from '../../platform/mail/index.js';

/** Every email Quire sends: one function each, an HTML and a text part from the same values. */
const FOOTER = 'Sent by Quire. You get this because of an account or an invitation at this address.';

export function welcomeEmail(v: { name: string; appUrl: string }): RenderedMail {
  return layout({
    title: 'Welcome to Quire',
    footer: FOOTER,
    body: html`<h1 style="font-size:22px">Welcome, ${v.name}</h1>
<p>Your Quire account is ready. Create an organization, invite your team and publish your first post.</p>
<p><a href="${v.appUrl}" style="display:inline-block;padding:10px 16px;background:#1d1d1b;color:#fff;border-radius:6px;text-decoration:none">Open Quire</a></p>`,
    text: `Welcome, ${v.name}\n\nYour Quire account is ready. Create an organization, invite your team and publish your first post.\n\nOpen Quire: ${v.appUrl}`,
  });
}

export function invitationEmail(v: { tenantName: string; role: string; appUrl: string }): RenderedMail {
  return layout({
    title: `You are invited to ${v.tenantName} on Quire`,
    footer: FOOTER,
    body: html`<h1 style="font-size:22px">Join ${v.tenantName}</h1>
<p>You have been invited to ${v.tenantName} as ${v.role}. Create a Quire account with this email address and you are in.</p>
<p><a href="${v.appUrl}" style="display:inline-block;padding:10px 16px;background:#1d1d1b;color:#fff;border-radius:6px;text-decoration:none">Accept the invitation</a></p>`,
    text: `Join ${v.tenantName}\n\nYou have been invited to ${v.tenantName} as ${v.role}. Create a Quire account with this email address and you are in.\n\nAccept: ${v.appUrl}`,
  });
}

export function digestEmail(v: {
  tenantName: string;
  posts: { title: string; url: string; publishedAt: string }[];
}): RenderedMail {
  const items = v.posts.map((p) => html`<li style="margin:6px 0"><a href="${p.url}">${p.title}</a></li>`);
  return layout({
    title: `${v.tenantName}: ${v.posts.length} new post${v.posts.length === 1 ? '' : 's'} this week`,
    footer: FOOTER,
    body: html`<h1 style="font-size:22px">This week at ${v.tenantName}</h1><ul>${items}</ul>`,
    text: `This week at ${v.tenantName}\n\n${v.posts.map((p) => `- ${p.title}\n  ${p.url}`).join('\n')}`,
  });
}
