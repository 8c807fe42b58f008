import { html, layout, type RenderedMail } from '../../platform/mail/index.js';

/** Every email Quire sends: one function each, an HTML and a text part from the same values. */
const FOOTER = 'Sent by Quire. You get this because of an account or an invitation at this address.';

const BUTTON =
  'display:inline-block;padding:10px 16px;background:#1d1d1b;color:#fff;border-radius:6px;text-decoration:none';

/** The welcome carries the address's verification link (one email at registration, not two). */
export function welcomeEmail(v: { name: string; appUrl: string; verifyUrl: string }): RenderedMail {
  return layout({
    title: 'Welcome to Quire',
    footer: FOOTER,
    body: html`<h1 style="font-size:22px">Welcome, ${v.name}</h1>
<p>Your Quire account is ready. Create an organization, invite your team and publish your first post.</p>
<p>First, confirm this is your address (the link works for 7 days):</p>
<p><a href="${v.verifyUrl}" style="${BUTTON}">Confirm my email</a></p>
<p><a href="${v.appUrl}">Open Quire</a></p>`,
    text: `Welcome, ${v.name}\n\nYour Quire account is ready. Create an organization, invite your team and publish your first post.\n\nFirst, confirm this is your address (the link works for 7 days):\n${v.verifyUrl}\n\nOpen Quire: ${v.appUrl}`,
  });
}

export function verifyEmail(v: { name: string; verifyUrl: string }): RenderedMail {
  return layout({
    title: 'Confirm your email for Quire',
    footer: FOOTER,
    body: html`<h1 style="font-size:22px">Confirm your email, ${v.name}</h1>
<p>Follow this link to confirm this is your address (it works for 7 days; older links no longer do):</p>
<p><a href="${v.verifyUrl}" style="${BUTTON}">Confirm my email</a></p>`,
    text: `Confirm your email, ${v.name}\n\nFollow this link to confirm this is your address (it works for 7 days; older links no longer do):\n${v.verifyUrl}`,
  });
}

export function passwordResetEmail(v: { name: string; resetUrl: string }): RenderedMail {
  return layout({
    title: 'Reset your Quire password',
    footer: FOOTER,
    body: html`<h1 style="font-size:22px">Reset your password, ${v.name}</h1>
<p>Someone (hopefully you) asked to reset the password of this account. The link works once, for one hour; using it signs you out everywhere.</p>
<p><a href="${v.resetUrl}" style="${BUTTON}">Choose a new password</a></p>
<p>If it was not you, ignore this email: your password stays as it is.</p>`,
    text: `Reset your password, ${v.name}\n\nSomeone (hopefully you) asked to reset the password of this account. The link works once, for one hour; using it signs you out everywhere.\n\n${v.resetUrl}\n\nIf it was not you, ignore this email: your password stays as it is.`,
  });
}

export function invitationEmail(v: { tenantName: string; role: string; appUrl: string }): RenderedMail {
  return layout({
    title: `You are invited to ${v.tenantName} on Quire`,
    footer: FOOTER,
    body: html`<h1 style="font-size:22px">Join ${v.tenantName}</h1>
<p>You have been invited to ${v.tenantName} as ${v.role}. Create a Quire account with this email address and you are in.</p>
<p><a href="${v.appUrl}" style="${BUTTON}">Accept the invitation</a></p>`,
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
