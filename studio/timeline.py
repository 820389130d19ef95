"""The camera timeline strip: a ``gr.HTML`` drawn over skeleton thumbnails, edited with the mouse.

Value: the JSON of :func:`studio.state.timeline_payload` (frame count, keyframes, cuts,
selection, the strip picture as a data URL). A click on the strip places a keyframe
or a cut (the tool buttons pick which; "scrub" only moves the playhead), a drag moves
a marker, a double-click deletes it. Each edit sets ``props.value`` to the payload plus
``"edit": {"op": ...}`` and fires the custom ``edit`` event, which
:func:`studio.state.apply_timeline_payload` turns into a new project.

The chosen tool lives in the page (``window.fvTimeline``), not in the component's props, so it
stays chosen across the server's updates and nothing the server sends (an error included) can
leave the template without it. "Play" runs the camera plan over the pose track in the browser:
the payload's ``play`` block (the framed skeleton per frame over the photos warped into its pose, see
:func:`studio.preview.playback_data`)
is drawn on a canvas at the track's frame rate, with the playhead moving along the strip.
No front-end build: plain JavaScript in gradio 6's ``html_template`` / ``js_on_load``.
"""

from __future__ import annotations

import gradio as gr

HTML_TEMPLATE = r"""
${(function () {
  var d; try { d = JSON.parse((typeof value === 'string' && value) || '{}'); } catch (err) { d = {}; }
  var esc = function (s) { return String(s).replace(/[&<>"']/g, function (c) { return '&#' + c.charCodeAt(0) + ';'; }); };
  var n = d.n || 0;
  var t = (window.fvTimeline && window.fvTimeline.tool) || 'keyframe';
  var toolButton = function (name, text) {
    return '<button class="fv-tool' + (t === name ? ' on' : '') + '" data-tool="' + name + '">' + text + '</button>';
  };
  var h = '<div class="fv-tools">' + toolButton('keyframe', '&#9670; keyframe') + toolButton('cut', '&#9986; cut')
        + toolButton('scrub', '&#8596; scrub')
        + (n ? '<button class="fv-play" data-action="play" title="play the camera plan over the motion (space)">&#9654; Play</button>'
             + '<span class="fv-rate"></span>' : '')
        + '<span class="fv-hint">click the strip to place &middot; drag a marker to move &middot; double-click to delete</span></div>';
  if (!n) { return h + '<div class="fv-empty">Load a motion (Motion tab) to plan the camera over it.</div>'; }
  var pct = function (f) { return (n > 1 ? f / (n - 1) : 0) * 100; };
  var sel = d.selected || {};
  h += '<div class="fv-track" data-n="' + n + '">';
  h += '<div class="fv-strip" style="background-image:url(' + (d.strip || '') + ')"></div>';
  var fps = d.fps || 25;
  for (var s = 0; s * fps < n; s += 1) {
    h += '<div class="fv-tick" style="left:' + pct(s * fps) + '%"><i>' + s + 's</i></div>';
  }
  (d.cuts || []).forEach(function (c) {
    var on = sel.kind === 'cut' && sel.frame === c.frame ? ' sel' : '';
    h += '<div class="fv-mark fv-cut' + on + '" data-kind="cut" data-frame="' + c.frame + '" style="left:' + pct(c.frame)
       + '%" title="cut at frame ' + c.frame + '"><span>' + esc(c.label) + '</span></div>';
  });
  (d.keyframes || []).forEach(function (k) {
    var on = sel.kind === 'keyframe' && sel.frame === k.frame ? ' sel' : '';
    h += '<div class="fv-mark fv-key' + on + '" data-kind="keyframe" data-frame="' + k.frame + '" style="left:' + pct(k.frame)
       + '%" title="keyframe at frame ' + k.frame + '"><span>' + esc(k.label) + '</span></div>';
  });
  (d.unmet || []).forEach(function (f) {
    h += '<div class="fv-unmet" style="left:' + pct(f) + '%" title="frame ' + f + ': the shot preset cannot frame the person here (last good framing held)"></div>';
  });
  h += '<div class="fv-head" style="left:' + pct(d.frame || 0) + '%"><b>' + (d.frame || 0) + '</b></div>';
  h += '</div>';
  if (d.play) {
    h += '<div class="fv-player"><canvas class="fv-canvas" width="' + (d.play.cw || 480) + '" height="' + (d.play.ch || 200)
       + '" data-frame="' + (d.frame || 0) + '"></canvas></div>';
  }
  return h;
})()}
"""

CSS_TEMPLATE = r"""
.fv-tools { display: flex; gap: 6px; align-items: center; margin-bottom: 8px; flex-wrap: wrap; }
.fv-tool { padding: 4px 12px; border-radius: 14px; border: 1px solid #4a5060; background: #20232c; color: #d8dbe6;
  cursor: pointer; font-size: 13px; }
.fv-tool.on { background: #ff8a3d; border-color: #ff8a3d; color: #17181d; font-weight: 600; }
.fv-hint { color: #8b91a3; font-size: 12px; margin-left: 8px; }
.fv-empty { padding: 28px; text-align: center; color: #8b91a3; border: 1px dashed #4a5060; border-radius: 8px; }
.fv-track { position: relative; height: 92px; border-radius: 8px; background: #181a21; cursor: crosshair;
  user-select: none; touch-action: none; margin: 0 10px 18px 10px; }
.fv-strip { position: absolute; inset: 0; background-size: 100% 100%; opacity: 0.85; border-radius: 8px; pointer-events: none; }
.fv-tick { position: absolute; bottom: -16px; width: 1px; height: 6px; background: #5b6172; pointer-events: none; }
.fv-tick i { position: absolute; top: 4px; left: -8px; font-size: 10px; color: #8b91a3; font-style: normal; }
.fv-mark { position: absolute; top: -4px; bottom: -4px; width: 14px; margin-left: -7px; cursor: ew-resize; z-index: 2; }
.fv-mark::before { content: ''; position: absolute; left: 6px; top: 0; bottom: 0; width: 2px; }
.fv-mark span { position: absolute; top: -2px; left: 10px; white-space: nowrap; font-size: 11px; padding: 0 4px;
  border-radius: 4px; pointer-events: none; }
.fv-key::before { background: #ff8a3d; }
.fv-key::after { content: ''; position: absolute; left: 1px; top: 36px; width: 10px; height: 10px; background: #ff8a3d;
  transform: rotate(45deg); border: 1px solid #17181d; }
.fv-key span { background: #ff8a3d; color: #17181d; }
.fv-cut::before { background: #f0465a; width: 3px; }
.fv-cut span { background: #f0465a; color: #fff; top: auto; bottom: -2px; }
.fv-mark.sel::before { box-shadow: 0 0 0 2px #ffffff; }
.fv-mark.sel span { outline: 2px solid #ffffff; }
.fv-unmet { position: absolute; top: 0; height: 6px; width: 3px; margin-left: -1px; background: #ffcc00; pointer-events: none; }
.fv-head { position: absolute; top: -6px; bottom: -6px; width: 2px; margin-left: -1px; background: #ffffff; z-index: 1;
  pointer-events: none; }
.fv-head b { position: absolute; bottom: -14px; left: 3px; font-size: 10px; color: #ffffff; }
.fv-play { padding: 4px 14px; border-radius: 14px; border: 1px solid #5b8cff; background: #1d2a4a; color: #dfe8ff;
  cursor: pointer; font-size: 13px; margin-left: 10px; }
.fv-play.on { background: #5b8cff; color: #10131a; font-weight: 600; }
.fv-rate { color: #8b91a3; font-size: 12px; min-width: 60px; }
.fv-player { display: flex; justify-content: center; margin: 4px 10px 6px 10px; }
.fv-canvas { background: #181a21; border-radius: 8px; max-width: 100%; }
"""

JS_ON_LOAD = r"""
const ui = window.fvTimeline = window.fvTimeline || { tool: 'keyframe' };
let drag = null;
let lastDown = { key: '', time: 0 };
let pendingSelect = null;  // a marker selection waiting to see whether a second press makes it a double-click
let playing = null;
const DOUBLE_MS = 450;
const data = () => { try { return JSON.parse(props.value || '{}'); } catch (err) { return {}; } };
const frameAt = (track, clientX) => {
  const r = track.getBoundingClientRect();
  const n = Number(track.dataset.n);
  return Math.max(0, Math.min(n - 1, Math.round((clientX - r.left) / r.width * (n - 1))));
};
const send = (edit, frame) => {
  const d = data();
  d.edit = edit;
  if (frame !== undefined) { d.frame = frame; }
  d.nonce = Date.now();
  props.value = JSON.stringify(d);
  trigger('edit');
};
// -- playback: the framed skeleton drawn on a canvas, the playhead moving along the strip --------------
// The photos warped into the source poses (one tile per stride frames): the source panel shows the tile, the
// camera panel the camera's view cut out of it (clamped to the tile, so no neighbour's pixels show).
let sheet = { url: '', image: null };
const spriteImage = (sprite) => {
  if (!sprite) { return null; }
  if (sheet.url !== sprite.url) {
    sheet = { url: sprite.url, image: new Image() };
    sheet.image.onload = () => { paintedValue = null; paintStill(); };  // the still frame again, now with photos
    sheet.image.src = sprite.url;
  }
  return sheet.image.complete && sheet.image.naturalWidth ? sheet.image : null;
};
const drawTile = (ctx, sprite, image, f, rect, x0, y0, w, h) => {
  const i = Math.min(Math.floor(f / sprite.stride), sprite.count - 1);
  const tx = (i % sprite.cols) * sprite.tw, ty = Math.floor(i / sprite.cols) * sprite.th;
  const [l, t, r, b] = rect.map((v) => v / 1000);  // the part of the source to show, 0..1
  const cl = Math.max(0, l), ct = Math.max(0, t), cr = Math.min(1, r), cb = Math.min(1, b);
  if (cr <= cl || cb <= ct) { return; }
  const sx = w / (r - l), sy = h / (b - t);
  ctx.globalAlpha = 0.85;
  ctx.drawImage(image, tx + cl * sprite.tw, ty + ct * sprite.th, (cr - cl) * sprite.tw, (cb - ct) * sprite.th,
                x0 + (cl - l) * sx, y0 + (ct - t) * sy, (cr - cl) * sx, (cb - ct) * sy);
  ctx.globalAlpha = 1;
  element.dataset.photoTiles = String((Number(element.dataset.photoTiles) || 0) + 1);  // for tests: photos drawn
};
const draw = (canvas, play, f) => {
  const ctx = canvas.getContext('2d');
  const W = canvas.width, H = canvas.height;
  ctx.fillStyle = '#181a21';
  ctx.fillRect(0, 0, W, H);
  const gap = 12;
  const side = (W - gap) / 2;
  const fit = (w, h) => { const s = Math.min(side / w, H / h); return [w * s, h * s]; };
  const [sw, sh] = fit(play.sw, play.sh);
  const [ow, oh] = fit(play.ow, play.oh);
  const sx0 = (side - sw) / 2, sy0 = (H - sh) / 2, ox0 = side + gap + (side - ow) / 2, oy0 = (H - oh) / 2;
  ctx.fillStyle = '#0c0c10';
  ctx.fillRect(ox0, oy0, ow, oh);
  const skeleton = (pts, x0, y0, w, h) => {
    ctx.lineWidth = Math.max(2, h / 90);
    play.limbs.forEach(([a, b], i) => {
      const xa = pts[2 * a], ya = pts[2 * a + 1], xb = pts[2 * b], yb = pts[2 * b + 1];
      if (xa < 0 || xb < 0) { return; }
      ctx.strokeStyle = play.colors[i];
      ctx.beginPath();
      ctx.moveTo(x0 + xa / 1000 * w, y0 + ya / 1000 * h);
      ctx.lineTo(x0 + xb / 1000 * w, y0 + yb / 1000 * h);
      ctx.stroke();
    });
  };
  const image = spriteImage(play.sprite);
  const r = play.rect[f];
  if (image) {
    drawTile(ctx, play.sprite, image, f, [0, 0, 1000, 1000], sx0, sy0, sw, sh);
    drawTile(ctx, play.sprite, image, f, r, ox0, oy0, ow, oh);
  }
  ctx.save();
  ctx.beginPath(); ctx.rect(sx0, sy0, sw, sh); ctx.clip();
  skeleton(play.source[f], sx0, sy0, sw, sh);
  ctx.restore();
  ctx.strokeStyle = '#ff8a3d';
  ctx.lineWidth = 2;
  ctx.strokeRect(sx0 + r[0] / 1000 * sw, sy0 + r[1] / 1000 * sh, (r[2] - r[0]) / 1000 * sw, (r[3] - r[1]) / 1000 * sh);
  ctx.save();
  ctx.beginPath(); ctx.rect(ox0, oy0, ow, oh); ctx.clip();
  skeleton(play.seen[f], ox0, oy0, ow, oh);
  ctx.restore();
  ctx.strokeStyle = '#ff8a3d';
  ctx.strokeRect(ox0 + 1, oy0 + 1, ow - 2, oh - 2);
  ctx.fillStyle = '#dfe2ec';
  ctx.font = '12px sans-serif';
  ctx.fillText('source  f' + f, sx0 + 6, sy0 + sh - 8);
  const c = play.curves[f];
  ctx.fillText('camera  ' + c[0].toFixed(2) + 'x  pan ' + c[1].toFixed(2) + ',' + c[2].toFixed(2)
               + (c[3] ? '  yaw ' + c[3].toFixed(0) : '') + (play.shots ? '  · ' + play.shots[f] : ''), ox0 + 6, oy0 + oh - 8);
};
const moveHead = (f, n) => {
  const head = element.querySelector('.fv-head');
  if (!head) { return; }
  head.style.left = (n > 1 ? f / (n - 1) * 100 : 0) + '%';
  const b = head.querySelector('b');
  if (b) { b.textContent = f; }
};
const stop = (tell) => {
  if (!playing) { return; }
  const p = playing;
  playing = null;
  cancelAnimationFrame(p.raf);
  const button = element.querySelector('.fv-play');
  if (button) { button.classList.remove('on'); button.innerHTML = '&#9654; Play'; }
  if (tell) { send({ op: 'scrub' }, p.frame); }
};
const start = () => {
  const d = data();
  if (!d.play || !d.n) { return; }
  const play = d.play;
  const startFrame = d.frame >= d.n - 1 ? 0 : (d.frame || 0);
  playing = { frame: startFrame, t0: performance.now(), shown: 0, raf: 0, last: -1, drawMs: 0 };
  const button = element.querySelector('.fv-play');
  if (button) { button.classList.add('on'); button.innerHTML = '&#10074;&#10074; Pause'; }
  const tick = (now) => {
    if (!playing) { return; }
    const f = (startFrame + Math.floor((now - playing.t0) * (d.fps || 25) / 1000)) % d.n;
    if (f !== playing.last) {
      const canvas = element.querySelector('.fv-canvas');
      const t = performance.now();
      if (canvas) { draw(canvas, play, f); }
      playing.drawMs += performance.now() - t;
      moveHead(f, d.n);
      playing.last = f;
      playing.frame = f;
      playing.shown += 1;
      const seconds = (now - playing.t0) / 1000;
      if (seconds > 0.5) {
        const fps = playing.shown / seconds;
        element.dataset.fps = fps.toFixed(1);
        element.dataset.drawMs = (playing.drawMs / playing.shown).toFixed(2);
        const rate = element.querySelector('.fv-rate');
        if (rate) { rate.textContent = fps.toFixed(0) + ' fps'; }
      }
    }
    playing.raf = requestAnimationFrame(tick);
  };
  playing.raf = requestAnimationFrame(tick);
};
ui.toggle = () => { if (playing) { stop(true); } else { start(); } };
// the still frame at the playhead, whenever the server sends a new plan
let paintedValue = null;
const paintStill = () => {
  if (playing) { return; }
  const canvas = element.querySelector('.fv-canvas');
  if (!canvas || (canvas.dataset.painted && paintedValue === props.value)) { return; }
  const d = data();
  if (!d.play) { return; }
  draw(canvas, d.play, Math.max(0, Math.min(d.frame || 0, d.n - 1)));
  canvas.dataset.painted = '1';
  paintedValue = props.value;
};
// the template re-renders on every server update; repaint the still whenever the value is new
setInterval(paintStill, 120);
paintStill();
element.addEventListener('click', (e) => {
  const button = e.target.closest('[data-tool]');
  if (button) {
    ui.tool = button.dataset.tool;
    element.querySelectorAll('.fv-tool').forEach((b) => b.classList.toggle('on', b.dataset.tool === ui.tool));
    props.tool = ui.tool;  // re-render with the new tool (the template reads window.fvTimeline)
    return;
  }
  if (e.target.closest('[data-action=play]')) { ui.toggle(); }
});
element.addEventListener('pointerdown', (e) => {
  const track = e.target.closest('.fv-track');
  if (!track || e.button !== 0) { return; }
  stop(false);
  const mark = e.target.closest('.fv-mark');
  if (mark) {
    const f = Number(mark.dataset.frame);
    const key = mark.dataset.kind + ':' + f;
    const now = Date.now();
    // A double-click is two presses on the same marker: the first press re-renders the strip
    // (the selection), so the browser's own dblclick never reaches the new element.
    if (lastDown.key === key && now - lastDown.time < DOUBLE_MS) {
      lastDown = { key: '', time: 0 };
      clearTimeout(pendingSelect);  // the first press's selection is never sent: one edit, the delete
      drag = null;
      e.preventDefault();
      send({ op: 'delete', kind: mark.dataset.kind, frame: f });
      return;
    }
    lastDown = { key, time: now };
    drag = { mark, track, kind: mark.dataset.kind, from: f, frame: f };
    try { mark.setPointerCapture(e.pointerId); } catch (err) { /* the marker may already be gone */ }
    e.preventDefault();
    return;
  }
  lastDown = { key: '', time: 0 };
  const f = frameAt(track, e.clientX);
  const tool = ui.tool || 'keyframe';
  if (tool === 'scrub') { send({ op: 'scrub' }, f); } else { send({ op: 'add', kind: tool, frame: f }, f); }
});
element.addEventListener('pointermove', (e) => {
  if (!drag) { return; }
  const f = frameAt(drag.track, e.clientX);
  if (f === drag.frame) { return; }
  drag.frame = f;
  const n = Number(drag.track.dataset.n);
  drag.mark.style.left = (n > 1 ? f / (n - 1) * 100 : 0) + '%';
  const label = drag.mark.querySelector('span');
  if (label) { label.textContent = 'f' + f; }
});
element.addEventListener('pointerup', () => {
  if (!drag) { return; }
  const d = drag;
  drag = null;
  const edit = () => send({ op: 'move', kind: d.kind, from: d.from, frame: d.frame }, d.frame);
  // A press without a drag selects the marker; it waits out a possible second press, since the server takes
  // one edit at a time and would drop a delete that arrived while the selection was still being handled.
  if (d.from === d.frame) { clearTimeout(pendingSelect); pendingSelect = setTimeout(edit, DOUBLE_MS); } else { edit(); }
});
"""


def timeline_strip(value: str = "", **kwargs) -> gr.HTML:
    """The timeline component; listen to its edits with ``.edit(...)``."""
    return gr.HTML(value=value, html_template=HTML_TEMPLATE, css_template=CSS_TEMPLATE, js_on_load=JS_ON_LOAD,
                   tool="keyframe", apply_default_css=False, **kwargs)
