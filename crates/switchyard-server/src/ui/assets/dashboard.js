// Switchyard dashboard: live sections over server-sent events, commands sent to the JSON API
// with the session cookie, signing in and out. No dependencies, no build step.
'use strict';

const status = (text, kind) => {
  const line = document.getElementById('status');
  if (!line) return;
  line.textContent = text;
  line.dataset.kind = kind || 'info';
};

// POST a JSON body to the API; the session cookie authenticates it.
async function send(url, body) {
  const response = await fetch(url, {
    method: 'POST',
    credentials: 'same-origin',
    headers: {'content-type': 'application/json'},
    body: JSON.stringify(body || {}),
  });
  let json = null;
  try { json = await response.json(); } catch (_) { /* no body */ }
  return {ok: response.ok, status: response.status, json};
}

// The API's stable error body, in words for the page.
function failure(answer) {
  const error = answer.json && answer.json.error;
  if (!error) return `Failed (HTTP ${answer.status}).`;
  if (error.code === 'stale_command') {
    return 'Not done: the rollout moved on since this page showed it. The page now shows it as it is; ' +
      'check it, then press again. (' + error.message + ')';
  }
  if (error.code === 'unauthenticated') return 'Your session ended; sign in again. (' + error.message + ')';
  return error.message;
}

// How to find `element` again in a section's new HTML: its command or its id, if it has one.
function selectorOf(element) {
  if (element.dataset && element.dataset.command) return `[data-command="${CSS.escape(element.dataset.command)}"]`;
  if (element.id) return `#${CSS.escape(element.id)}`;
  return null;
}

// Replaces a live section's content; the control that had the keyboard focus in it keeps it
// (its new copy), so that a key pressed as the section is redrawn is not lost.
function replaceSection(element, html) {
  const focused = document.activeElement;
  const selector = focused && element.contains(focused) ? selectorOf(focused) : null;
  element.innerHTML = html;
  const again = selector && element.querySelector(selector);
  if (again) again.focus();
}

// Live sections: each event carries the HTML of the sections that changed, by element id.
for (const root of document.querySelectorAll('[data-live]')) {
  const source = new EventSource(root.dataset.live);
  source.addEventListener('sections', (event) => {
    const sections = JSON.parse(event.data);
    for (const [id, html] of Object.entries(sections)) {
      const element = document.getElementById(id);
      if (element) replaceSection(element, html);
    }
    root.dataset.updated = String(Date.now());
  });
  source.addEventListener('open', () => { root.dataset.connected = 'true'; });
  source.addEventListener('error', () => { root.dataset.connected = 'false'; });
}

async function command(button) {
  const box = button.closest('[data-rollout]');
  const reasonInput = document.getElementById('reason');
  const reason = reasonInput ? reasonInput.value.trim() : '';
  const name = button.dataset.command;
  const body = {};
  if (name !== 'undo') {
    body.expect = {rollout: Number(box.dataset.rollout), step: Number(box.dataset.step)};
  }
  if (reason && ['approve', 'abort'].includes(name)) body.reason = reason;
  button.disabled = true;
  status(`${button.textContent}…`);
  try {
    const answer = await send(button.dataset.url, body);
    if (answer.ok) {
      const view = answer.json && (answer.json.rollout || answer.json);
      const phase = view && view.phase ? ` (now ${view.phase})` : '';
      status(`${button.textContent}: done${phase}.`);
      if (reasonInput) reasonInput.value = '';
    } else {
      status(failure(answer), 'error');
    }
  } catch (e) {
    status(`Could not reach the daemon: ${e}`, 'error');
  } finally {
    button.disabled = false;
  }
}

async function changeAndReload(url, body) {
  const answer = await send(url, body);
  if (answer.ok) {
    location.reload();
  } else {
    status(failure(answer), 'error');
  }
}

document.addEventListener('click', (event) => {
  const target = event.target.closest('button');
  if (!target) return;
  if (target.dataset.command) command(target);
  else if (target.dataset.flagToggle) changeAndReload(target.dataset.flagToggle, {});
  else if (target.dataset.stopExperiment) {
    const reasonInput = document.getElementById('reason');
    changeAndReload(target.dataset.stopExperiment, reasonInput && reasonInput.value ? {reason: reasonInput.value} : {});
  } else if ('signOut' in target.dataset) {
    send('/ui/logout').then(() => { location.href = '/ui/login'; });
  }
});

document.addEventListener('submit', async (event) => {
  const form = event.target;
  if ('signIn' in form.dataset) {
    event.preventDefault();
    const error = document.getElementById('sign-in-error');
    const answer = await send('/ui/login', {token: form.token.value});
    if (answer.ok) {
      const next = form.dataset.next || '/ui/';
      location.href = next.startsWith('/ui/') ? next : '/ui/';
    } else {
      error.textContent = failure(answer);
      form.token.focus();
    }
  } else if (form.dataset.flagRollout) {
    event.preventDefault();
    const percent = Number(form.querySelector('input').value);
    changeAndReload(form.dataset.flagRollout, {percent, environment: form.dataset.environment});
  }
});
