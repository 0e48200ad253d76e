// ChatLedger console: reads the v1 API with the key a person enters.
//
// Rules this file keeps:
// - The key lives in sessionStorage and travels only in the x-api-key header (never in a
//   URL). That is why the change stream is read with fetch(): EventSource cannot send
//   headers.
// - Every text that comes from the API (names, ids, previews, event data) is put in the
//   page with textContent or as an attribute value, never parsed as HTML.
'use strict';

const KEY_STORAGE = 'chatledger.apiKey';
const PAGE = 50;
const STATUS_EVERY_MS = 5000;

const state = {
  key: null,
  role: null,
  deviceId: null,
  filter: 'inbox', // WhatsApp's main list: archived chats are under "Archived"
  chats: [],          // the chats shown, in order
  chatsCursor: null,  // nextCursor of the last page shown
  chatId: null,       // the chat whose details are shown
  asOf: null,         // epoch ms while a replayed list is shown
  stream: null,       // AbortController of the change stream
  refreshing: null,   // a live refresh in flight
  refreshAgain: false,
  version: null,      // the device version the list shows
  statusTimer: null,
  devicesCursor: null,
  eventsCursor: null,
};

const $ = (id) => document.getElementById(id);

// MARK: - Building elements (text only)

/** An element with a class and text; children are appended as nodes. */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function showMessage(text) {
  const message = $('message');
  message.textContent = text;
  message.hidden = !text;
}

// MARK: - The API

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, key = state.key) {
  const response = await fetch(path, { headers: { 'x-api-key': key }, cache: 'no-store' });
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (!response.ok) {
    const message = body && body.error ? body.error.message : response.statusText;
    if (response.status === 401 && key === state.key) forgetKey('The key is no longer accepted.');
    throw new ApiError(response.status, message);
  }
  return body;
}

const devicePath = (deviceId) => '/api/v1/devices/' + encodeURIComponent(deviceId);

// MARK: - Time

function formatTime(ms) {
  if (ms === null || ms === undefined || ms <= 0) return '';
  const date = new Date(ms);
  const now = new Date();
  const startOfToday = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
  if (ms >= startOfToday) return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (ms >= startOfToday - 86400000) return 'Yesterday';
  if (ms >= startOfToday - 6 * 86400000) return date.toLocaleDateString([], { weekday: 'long' });
  return date.toLocaleDateString();
}

const fullTime = (ms) => (ms ? new Date(ms).toLocaleString() : '—');

// MARK: - Key

async function useKey(key) {
  const status = await api('/api/v1/status', key);  // 401 here: the key is wrong
  state.key = key;
  sessionStorage.setItem(KEY_STORAGE, key);
  state.role = status.role;
  $('key-form').hidden = true;
  $('intro').hidden = true;
  $('session').hidden = false;
  $('session-role').textContent = 'Signed in: ' + status.role;
  $('app').hidden = false;
  $('asof-form').hidden = status.role !== 'auditor';
  showMessage('');
  renderStatus(status);
  scheduleStatus();
  await loadDevices(false);
}

function forgetKey(reason) {
  sessionStorage.removeItem(KEY_STORAGE);
  stopStream();
  clearTimeout(state.statusTimer);
  Object.assign(state, { key: null, role: null, deviceId: null, chats: [], chatId: null, asOf: null, version: null });
  $('app').hidden = true;
  $('session').hidden = true;
  $('key-form').hidden = false;
  $('intro').hidden = false;
  $('key-input').value = '';
  $('device-list').replaceChildren();
  $('chat-list').replaceChildren();
  $('chat-details').replaceChildren();
  showMessage(reason || '');
  $('key-input').focus();
}

// MARK: - Status

function scheduleStatus() {
  clearTimeout(state.statusTimer);
  state.statusTimer = setTimeout(async () => {
    if (!state.key) return;
    try {
      renderStatus(await api('/api/v1/status'));
      await loadDevices(false, true);
    } catch (error) {
      if (error.status !== 401) $('status-summary').textContent = 'Status unavailable: ' + error.message;
    }
    if (state.key) scheduleStatus();
  }, STATUS_EVERY_MS);
}

function renderStatus(status) {
  const lag = status.partitions.reduce((sum, p) => sum + (p.lag || 0), 0);
  $('status-summary').textContent =
    (status.ready ? 'Ready' : 'Catching up') + ' · source ' + status.source + ' · lag ' + lag + ' records';
  $('status-summary').className = 'status-summary ' + (status.ready ? 'ok' : 'busy');
  const counts = [
    ['Devices', status.devices], ['Events applied', status.counts.applied], ['Duplicates', status.counts.duplicates],
    ['Ignored', status.counts.ignored], ['Dead letters', status.counts.deadLetters],
  ];
  $('status-counts').replaceChildren(...counts.flatMap(([name, value]) => [el('dt', null, name), el('dd', null, value)]));
  $('partition-rows').replaceChildren(...status.partitions.map((p) => {
    const row = el('tr');
    row.append(el('th', null, p.partition), el('td', null, p.appliedOffset ?? '—'), el('td', null, p.endOffset ?? '—'),
      el('td', null, p.lag ?? '—'));
    row.firstChild.scope = 'row';
    return row;
  }));
}

// MARK: - Devices

async function loadDevices(more, quiet) {
  const shown = $('device-list');
  let path = '/api/v1/devices?limit=' + (more ? PAGE : Math.max(PAGE, Math.min(500, shown.children.length)));
  if (more && state.devicesCursor) path += '&cursor=' + encodeURIComponent(state.devicesCursor);
  let page;
  try {
    page = await api(path);
  } catch (error) {
    if (!quiet && error.status !== 401) showMessage('Devices: ' + error.message);
    return;
  }
  const items = page.devices.map(deviceItem);
  if (more) shown.append(...items); else replaceKeepingFocus(shown, items);
  state.devicesCursor = page.nextCursor;
  $('more-devices').hidden = !page.nextCursor;
  $('devices-empty').hidden = shown.children.length > 0;
  // The first device is shown until the person chooses one (also when devices appear later).
  if (!state.deviceId && page.devices.length > 0 && !more) selectDevice(page.devices[0].deviceId, false);
}

function deviceItem(device) {
  const item = el('li');
  item.dataset.deviceId = device.deviceId;
  const button = el('button', 'device');
  button.type = 'button';
  button.dataset.focusKey = 'device:' + device.deviceId;
  if (device.deviceId === state.deviceId) button.setAttribute('aria-current', 'true');
  const top = el('span', 'row');
  top.append(el('span', 'name', device.deviceId), el('span', 'time', formatTime(device.lastActivity)));
  const bottom = el('span', 'row');
  bottom.append(el('span', 'sub', device.chats + (device.chats === 1 ? ' chat' : ' chats') +
    (device.unreadChats ? ' · ' + device.unreadChats + ' unread' : '')));
  if (device.unreadMessages > 0) {
    const badge = el('span', 'badge', device.unreadMessages);
    badge.setAttribute('aria-label', device.unreadMessages + ' unread messages');
    bottom.append(badge);
  }
  button.append(top, bottom);
  button.addEventListener('click', () => selectDevice(device.deviceId, true));
  item.append(button);
  return item;
}

function selectDevice(deviceId, moveFocus) {
  state.deviceId = deviceId;
  state.chatId = null;
  state.asOf = null;
  state.version = null;
  for (const button of $('device-list').querySelectorAll('button.device')) {
    if (button.parentElement.dataset.deviceId === deviceId) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
  }
  $('chats-title').textContent = 'Chats of ' + deviceId;
  $('asof-banner').hidden = true;
  $('asof-clear').hidden = true;
  renderChatDetails(null);
  loadChats(false).then(() => { if (moveFocus) revealOnPhone($('chats-panel')); });
  followChanges(deviceId);
}

// MARK: - Chats

async function loadChats(more) {
  const deviceId = state.deviceId;
  if (!deviceId) return;
  const limit = more ? PAGE : Math.max(PAGE, Math.min(500, state.chats.length));
  let path = devicePath(deviceId) + '/chats?limit=' + limit + '&filter=' + state.filter;
  if (more && state.chatsCursor) path += '&cursor=' + encodeURIComponent(state.chatsCursor);
  if (state.asOf !== null) path += '&asOf=' + state.asOf;
  let page;
  try {
    page = await api(path);
  } catch (error) {
    if (error.status !== 401) showMessage('Chats: ' + error.message);
    return;
  }
  if (deviceId !== state.deviceId) return;  // another device was chosen meanwhile
  state.chats = more ? state.chats.concat(page.chats) : page.chats;
  state.chatsCursor = page.nextCursor;
  state.version = page.version;
  const items = page.chats.map(chatItem);
  if (more) $('chat-list').append(...items); else replaceKeepingFocus($('chat-list'), items);
  $('more-chats').hidden = !page.nextCursor;
  $('chats-empty').hidden = state.chats.length > 0;
  if (state.chatId) {
    const chat = state.chats.find((c) => c.id === state.chatId);
    if (chat) renderChatDetails(chat);
  }
}

const KIND_LABEL = {
  image: 'Photo', video: 'Video', audio: 'Audio', document: 'Document', sticker: 'Sticker',
  location: 'Location', contact: 'Contact', call: 'Call', system: '', text: '',
};
const ACK_LABEL = { error: '!', pending: '◷', server: '✓', delivered: '✓✓', read: '✓✓', played: '✓✓' };

/** The chat's name, else what WhatsApp shows for an unnamed contact: its number. */
function displayName(chat) {
  if (chat.name) return chat.name;
  const user = chat.id.replace(/@.*$/, '');
  return /^[0-9]+@(c\.us|s\.whatsapp\.net)$/.test(chat.id) ? '+' + user : user;
}

function previewNodes(message) {
  if (!message) return [el('span', 'preview', '')];
  if (message.revoked) return [el('span', 'preview revoked', 'This message was deleted')];
  const nodes = [];
  if (message.fromMe && message.ack) {
    const ack = el('span', 'ack ack-' + message.ack, ACK_LABEL[message.ack] || '');
    ack.setAttribute('aria-label', 'your message, ' + message.ack);
    nodes.push(ack);
  }
  const kind = KIND_LABEL[message.kind] || '';
  const text = message.preview || kind;
  nodes.push(el('span', 'preview', kind && message.preview ? kind + ': ' + message.preview : text));
  return nodes;
}

function chatItem(chat) {
  const item = el('li');
  item.dataset.chatId = chat.id;
  const button = el('button', 'chat-row');
  button.type = 'button';
  button.dataset.focusKey = 'chat:' + chat.id;
  if (chat.id === state.chatId) button.setAttribute('aria-current', 'true');
  const avatar = el('span', 'avatar' + (chat.isGroup ? ' group' : ''), displayName(chat).replace(/^\+/, '').slice(0, 1).toUpperCase());
  avatar.setAttribute('aria-hidden', 'true');
  const body = el('span', 'chat-body');
  const top = el('span', 'row');
  const unread = chat.unreadCount > 0 || chat.markedUnread;
  top.append(el('span', 'name', displayName(chat)),
    el('span', 'time' + (unread ? ' unread' : ''), formatTime(chat.lastMessage ? chat.lastMessage.timestamp : chat.timestamp)));
  const bottom = el('span', 'row');
  const preview = el('span', 'preview-line');
  preview.append(...previewNodes(chat.lastMessage));
  const marks = el('span', 'marks');
  if (chat.isGroup) marks.append(el('span', 'mark', 'Group'));
  if (chat.readOnly) marks.append(el('span', 'mark', 'Read-only'));
  if (chat.archived) marks.append(el('span', 'mark archived', 'Archived'));
  if (chat.isMuted) marks.append(el('span', 'mark muted', 'Muted'));
  if (chat.pinned) marks.append(el('span', 'mark pinned', 'Pinned'));
  if (chat.unreadCount > 0) {
    const badge = el('span', 'badge' + (chat.isMuted ? ' muted' : ''), chat.unreadCount);
    badge.setAttribute('aria-label', chat.unreadCount + ' unread');
    marks.append(badge);
  } else if (chat.markedUnread) {
    const dot = el('span', 'badge dot' + (chat.isMuted ? ' muted' : ''), '');
    dot.setAttribute('aria-label', 'marked unread');
    marks.append(dot);
  }
  bottom.append(preview, marks);
  body.append(top, bottom);
  button.append(avatar, body);
  button.addEventListener('click', () => selectChat(chat.id));
  item.append(button);
  return item;
}

/** Replaces a list's items and gives focus back to the item that had it, so a live update
 *  never throws a keyboard user out of the list. */
function replaceKeepingFocus(list, items) {
  const focused = document.activeElement && list.contains(document.activeElement) ? document.activeElement.dataset.focusKey : null;
  list.replaceChildren(...items);
  if (focused) {
    const again = [...list.querySelectorAll('button')].find((b) => b.dataset.focusKey === focused);
    if (again) again.focus();
  }
}

/** On a phone the panels are stacked: show the one that just changed. Focus stays on the
 *  button that was pressed, so keyboard users keep their place in the list. */
function revealOnPhone(panel) {
  if (window.matchMedia('(max-width: 760px)').matches) panel.scrollIntoView({ block: 'start' });
}

// MARK: - One chat

function selectChat(chatId) {
  state.chatId = chatId;
  for (const button of $('chat-list').querySelectorAll('button.chat-row')) {
    if (button.parentElement.dataset.chatId === chatId) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
  }
  renderChatDetails(state.chats.find((c) => c.id === chatId) || null);
  revealOnPhone($('chat-panel'));
  if (state.role === 'auditor') loadEvents(false);
}

function renderChatDetails(chat) {
  $('chat-empty').hidden = !!chat;
  $('events-panel').hidden = !chat || state.role !== 'auditor';
  if (!chat) {
    $('chat-title').textContent = 'Chat';
    $('chat-details').replaceChildren();
    $('event-list').replaceChildren();
    return;
  }
  $('chat-title').textContent = displayName(chat);
  const message = chat.lastMessage;
  const rows = [
    ['Id', chat.id], ['Name', chat.name ?? '—'], ['Group', chat.isGroup ? 'yes' : 'no'],
    ['Unread messages', chat.unreadCount], ['Marked unread', chat.markedUnread ? 'yes' : 'no'],
    ['Archived', chat.archived ? 'yes' : 'no'], ['Pinned', chat.pinned ? 'since ' + fullTime(chat.pinnedAt) : 'no'],
    ['Muted', chat.isMuted ? (chat.muteExpiration === -1 ? 'forever' : 'until ' + fullTime(chat.muteExpiration)) : 'no'],
    ['Read-only', chat.readOnly ? 'yes' : 'no'], ['Last activity', fullTime(chat.timestamp)],
    ['Last message', message ? (message.fromMe ? 'sent, ' : 'received, ') + message.kind + ', ' + fullTime(message.timestamp) : '—'],
  ];
  if (message) {
    rows.push(['Preview', message.revoked ? '(deleted)' : message.preview]);
    if (message.fromMe) rows.push(['Delivery', message.ack ?? '—']);
  }
  if (state.version !== null) rows.push(['Device version', state.version]);
  $('chat-details').replaceChildren(...rows.flatMap(([name, value]) => [el('dt', null, name), el('dd', null, value)]));
}

async function loadEvents(more) {
  const deviceId = state.deviceId;
  const chatId = state.chatId;
  let path = devicePath(deviceId) + '/events?limit=50&chat=' + encodeURIComponent(chatId);
  if (more && state.eventsCursor) path += '&cursor=' + encodeURIComponent(state.eventsCursor);
  let page;
  try {
    page = await api(path);
  } catch (error) {
    if (error.status !== 401) showMessage('Events: ' + error.message);
    return;
  }
  if (deviceId !== state.deviceId || chatId !== state.chatId) return;
  const items = page.events.map((record) => {
    const item = el('li', 'event');
    const head = el('div', 'event-head');
    head.append(el('strong', null, record.event.type), el('span', 'time', fullTime(record.event.occurredAt)),
      el('span', 'position', record.partition + ':' + record.offset));
    item.append(head);
    if (record.event.data !== undefined) item.append(el('pre', 'event-data', JSON.stringify(record.event.data, null, 1)));
    return item;
  });
  if (more) $('event-list').append(...items); else $('event-list').replaceChildren(...items);
  state.eventsCursor = page.nextCursor;
  $('more-events').hidden = !page.nextCursor;
}

// MARK: - Live updates

function stopStream() {
  if (state.stream) state.stream.abort();
  state.stream = null;
}

function setLive(text) { $('live-state').textContent = text; }

/** Follows GET …/changes with fetch (the header carries the key) and refreshes the list
 *  on every version event; reconnects with Last-Event-ID after a drop, backing off. */
async function followChanges(deviceId) {
  stopStream();
  const controller = new AbortController();
  state.stream = controller;
  let lastEventId = null;
  let delay = 500;
  while (!controller.signal.aborted) {
    try {
      const headers = { 'x-api-key': state.key, Accept: 'text/event-stream' };
      if (lastEventId) headers['Last-Event-ID'] = lastEventId;
      const response = await fetch(devicePath(deviceId) + '/changes', { headers, signal: controller.signal, cache: 'no-store' });
      if (response.status === 401) { forgetKey('The key is no longer accepted.'); return; }
      if (!response.ok || !response.body) throw new Error('changes: HTTP ' + response.status);
      setLive('Live');
      delay = 500;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = { id: null, type: 'message', data: [] };
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;  // a comment: keep-alive
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (field === 'id') event.id = text;
            else if (field === 'event') event.type = text;
            else if (field === 'data') event.data.push(text);
          }
          if (event.id !== null) lastEventId = event.id;
          if (event.type === 'version' && deviceId === state.deviceId) onVersion(JSON.parse(event.data.join('\n')));
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    setLive('Reconnecting…');
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 10000);
  }
}

/** A device version changed: refresh the list (one refresh at a time; changes that
 *  arrive during one start another after it). */
function onVersion(change) {
  if (state.asOf !== null) return;  // a replayed list does not move
  if (change.version === state.version) return;
  if (state.refreshing) { state.refreshAgain = true; return; }
  state.refreshing = (async () => {
    do {
      state.refreshAgain = false;
      await loadChats(false);
      await loadDevices(false, true);
    } while (state.refreshAgain);
    state.refreshing = null;
  })();
}

// MARK: - Wiring

function wire() {
  $('key-form').addEventListener('submit', async (submitted) => {
    submitted.preventDefault();
    const key = $('key-input').value.trim();
    if (!key) return;
    try {
      await useKey(key);
    } catch (error) {
      showMessage(error.status === 401 ? 'That key is not accepted.' : 'Could not reach the server: ' + error.message);
    }
  });
  $('forget-key').addEventListener('click', () => forgetKey(''));
  for (const radio of document.querySelectorAll('input[name=filter]')) {
    radio.addEventListener('change', () => {
      state.filter = radio.value;
      state.chats = [];
      loadChats(false);
    });
  }
  $('more-devices').addEventListener('click', () => loadDevices(true));
  $('more-chats').addEventListener('click', () => loadChats(true));
  $('more-events').addEventListener('click', () => loadEvents(true));
  $('asof-form').addEventListener('submit', (submitted) => {
    submitted.preventDefault();
    const time = new Date($('asof-input').value).getTime();
    if (Number.isNaN(time)) return;
    state.asOf = time;
    state.chats = [];
    $('asof-banner').textContent = 'The list as it was at ' + fullTime(time) + ', replayed from the log. Live updates are paused.';
    $('asof-banner').hidden = false;
    $('asof-clear').hidden = false;
    loadChats(false);
  });
  $('asof-clear').addEventListener('click', () => {
    state.asOf = null;
    state.chats = [];
    $('asof-banner').hidden = true;
    $('asof-clear').hidden = true;
    loadChats(false);
  });
}

wire();
const saved = sessionStorage.getItem(KEY_STORAGE);
if (saved) {
  useKey(saved).catch((error) => {
    if (error.status === 401) forgetKey('The saved key is no longer accepted.');
    else showMessage('Could not reach the server: ' + error.message);
  });
} else {
  $('key-input').focus();
}
