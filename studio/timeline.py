"""The camera timeline strip: a ``gr.HTML`` drawn over skeleton thumbnails, edited with the mouse.

Value: the JSON of :func:`studio.state.timeline_payload` (frame count, keyframes, cuts,
selection, the strip picture as a data URL). A click on the strip places a keyframe
or a cut (the tool buttons pick which; "scrub" only moves the playhead), a drag moves
a marker, a double-click deletes it. Each edit sets ``props.value`` to the payload plus
``"edit": {"op": ...}`` and fires the custom ``edit`` event, which
:func:`studio.state.apply_timeline_payload` turns into a new project.
No front-end build: plain JavaScript in gradio 6's ``html_template`` / ``js_on_load``.
"""

from __future__ import annotations

import gradio as gr

HTML_TEMPLATE = r"""
${(function () {
  var d; try { d = JSON.parse(value || '{}'); } catch (err) { d = {}; }
  var esc = function (s) { return String(s).replace(/[&<>"']/g, function (c) { return '&#' + c.charCodeAt(0) + ';'; }); };
  var n = d.n || 0;
  var t = tool || 'keyframe';
  var toolButton = function (name, text) {
    return '<button class="fv-tool' + (t === name ? ' on' : '') + '" data-tool="' + name + '">' + text + '</button>';
  };
  var h = '<div class="fv-tools">' + toolButton('keyframe', '&#9670; keyframe') + toolButton('cut', '&#9986; cut')
        + toolButton('scrub', '&#9654; scrub')
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
  h += '<div class="fv-head" style="left:' + pct(d.frame || 0) + '%"><b>' + (d.frame || 0) + '</b></div>';
  return h + '</div>';
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
.fv-head { position: absolute; top: -6px; bottom: -6px; width: 2px; margin-left: -1px; background: #ffffff; z-index: 1;
  pointer-events: none; }
.fv-head b { position: absolute; bottom: -14px; left: 3px; font-size: 10px; color: #ffffff; }
"""

JS_ON_LOAD = r"""
let drag = null;
const frameAt = (track, clientX) => {
  const r = track.getBoundingClientRect();
  const n = Number(track.dataset.n);
  return Math.max(0, Math.min(n - 1, Math.round((clientX - r.left) / r.width * (n - 1))));
};
const send = (edit, frame) => {
  let d = {};
  try { d = JSON.parse(props.value || '{}'); } catch (err) { d = {}; }
  d.edit = edit;
  if (frame !== undefined) { d.frame = frame; }
  d.nonce = Date.now();
  props.value = JSON.stringify(d);
  trigger('edit');
};
element.addEventListener('click', (e) => {
  const button = e.target.closest('[data-tool]');
  if (button) { props.tool = button.dataset.tool; }
});
element.addEventListener('pointerdown', (e) => {
  const track = e.target.closest('.fv-track');
  if (!track || e.button !== 0) { return; }
  const mark = e.target.closest('.fv-mark');
  if (mark) {
    const f = Number(mark.dataset.frame);
    drag = { mark, track, kind: mark.dataset.kind, from: f, frame: f };
    mark.setPointerCapture(e.pointerId);
    e.preventDefault();
    return;
  }
  const f = frameAt(track, e.clientX);
  const tool = props.tool || 'keyframe';
  if (tool === 'scrub') { send({ op: 'scrub' }, f); } else { send({ op: 'add', kind: tool, frame: f }, f); }
});
element.addEventListener('pointermove', (e) => {
  if (!drag) { return; }
  const f = frameAt(drag.track, e.clientX);
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
  send({ op: 'move', kind: d.kind, from: d.from, frame: d.frame }, d.frame);
});
element.addEventListener('dblclick', (e) => {
  const mark = e.target.closest('.fv-mark');
  if (mark) { send({ op: 'delete', kind: mark.dataset.kind, frame: Number(mark.dataset.frame) }); }
});
"""


def timeline_strip(value: str = "", **kwargs) -> gr.HTML:
    """The timeline component; listen to its edits with ``.edit(...)``."""
    return gr.HTML(value=value, html_template=HTML_TEMPLATE, css_template=CSS_TEMPLATE, js_on_load=JS_ON_LOAD,
                   tool="keyframe", apply_default_css=False, **kwargs)
