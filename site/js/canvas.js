// The drawing pad: pen strokes from pointer events (mouse, finger, pen),
// an imported picture as an alternative, and character boxes drawn on top.
// Strokes are kept in canvas CSS pixels, which is what the API is sent.
// Colours come from the style sheet (--paper, --ink, --box), so the pad follows the colour scheme.

const PICTURE_MARGIN = 8; // CSS px around an imported picture
const MIN_STEP = 1; // CSS px between two kept points
const LABEL_PX = 16; // a character box's label, above it
const SMALLEST_LABEL_PX = 10;

export class DrawingPad {
  constructor(canvas, { onStrokeStart = () => {}, onStrokeEnd = () => {}, onResize = () => {} } = {}) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.onStrokeStart = onStrokeStart;
    this.onStrokeEnd = onStrokeEnd;
    this.onResize = onResize; // after the pad's size changed (its boxes are gone: the page may draw them again)
    this.penWidth = 14;
    // [{ width, points: [[x, y], ...], drawn }]: `drawn` is the stroke as drawn, with the pad's size then, so a
    // resize scales from it and a phone turned there and back gets its drawing back exactly.
    this.strokes = [];
    this.picture = null; // { bitmap, width, height, dataUrl, name, backdrop }
    this.covered = null; // the picture the first stroke replaced: undoing that stroke brings it back
    this.cleared = null; // what Clear removed ({ strokes, picture }): Undo on the empty pad brings it back
    this.boxes = []; // [{ box: [x, y, w, h], label }] in stroke or picture coordinates
    this.words = []; // word boxes, the same way, drawn around the character boxes
    this.colors = readColors(canvas);
    this.size = { width: 0, height: 0 };
    this.active = null; // the pointer drawing now: { id, stroke }

    canvas.addEventListener("pointerdown", (event) => this.#down(event));
    canvas.addEventListener("pointermove", (event) => this.#move(event));
    canvas.addEventListener("pointerup", (event) => this.#up(event, true));
    canvas.addEventListener("pointercancel", (event) => this.#up(event, false));
    // Capture lost without a pointerup (the window lost focus mid-stroke): end the stroke, or the pad
    // would ignore every later pointer.
    canvas.addEventListener("lostpointercapture", (event) => this.#up(event, false));
    canvas.addEventListener("contextmenu", (event) => event.preventDefault());
    // A stroke is not a gesture: without this the browser reads a finger's stroke as the start of one (a tap,
    // a double tap) and drops a tap on Predict made right after it (Chromium: every tap within 0.3 s).
    canvas.addEventListener("touchstart", (event) => event.preventDefault(), { passive: false });
    new ResizeObserver(() => this.#resize()).observe(canvas);
    this.#resize();
  }

  isDrawing() {
    return this.active !== null;
  }

  isEmpty() {
    return this.picture === null && this.strokes.length === 0;
  }

  /** What is on the pad now, to recognise later with shows(): the picture and the stroke objects themselves. */
  snapshot() {
    return { picture: this.picture, strokes: [...this.strokes] };
  }

  /** Whether the pad holds exactly what snapshot() saw (an Undo can bring a drawing back to it). */
  shows(snapshot) {
    const { picture, strokes } = snapshot;
    const same = strokes.length === this.strokes.length && strokes.every((stroke, i) => stroke === this.strokes[i]);
    return same && picture === this.picture;
  }

  /** The strokes as the API wants them: [[[x, y], ...], ...]. */
  strokePoints() {
    return this.strokes.map((stroke) => stroke.points);
  }

  setPenWidth(width) {
    this.penWidth = width;
  }

  setPicture(picture) {
    this.strokes = [];
    this.#dropPicture();
    this.#forgetCleared();
    this.picture = picture;
    this.boxes = [];
    this.words = [];
    this.redraw();
  }

  setBoxes(boxes, words = []) {
    this.boxes = boxes;
    this.words = words;
    this.redraw();
  }

  /** After a change of colour scheme. */
  restyle() {
    this.colors = readColors(this.canvas);
    this.redraw();
  }

  /** Removes the last stroke (or the imported picture), or brings back what Clear removed; false if nothing. */
  undo() {
    if (this.strokes.length > 0) {
      this.strokes.pop();
      if (this.strokes.length === 0 && this.covered) [this.picture, this.covered] = [this.covered, null];
    } else if (this.picture) this.#dropPicture();
    else if (this.cleared) {
      ({ strokes: this.strokes, picture: this.picture } = this.cleared);
      this.cleared = null;
    } else return false;
    this.boxes = [];
    this.words = [];
    this.redraw();
    return true;
  }

  /** Empties the pad; Undo right after brings the drawing back (an Esc pressed by mistake). */
  clear() {
    if (!this.isEmpty()) {
      this.#forgetCleared();
      this.cleared = { strokes: this.strokes, picture: this.picture };
      this.picture = null; // kept in `cleared`: not closed below
    }
    this.#dropPicture(); // a picture a stroke covered goes for good
    this.strokes = [];
    this.boxes = [];
    this.words = [];
    this.active = null;
    this.redraw();
  }

  redraw() {
    const { context: ctx } = this;
    const ratio = this.canvas.width / (this.size.width || 1);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = this.colors.paper;
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    if (this.picture) {
      const { scale, dx, dy } = this.#pictureFit();
      const [width, height] = [this.picture.width * scale, this.picture.height * scale];
      if (this.picture.backdrop) {
        ctx.fillStyle = this.picture.backdrop; // what its transparent pixels stand for, as the service reads them
        ctx.fillRect(dx, dy, width, height);
      }
      ctx.drawImage(this.picture.bitmap, dx, dy, width, height);
    }
    for (const stroke of this.strokes) drawStroke(ctx, stroke, this.colors.ink);
    this.#drawBoxes();
  }

  #forgetCleared() {
    this.cleared?.picture?.bitmap.close();
    this.cleared = null;
  }

  // A photo's bitmap can hold 50-200 MB; free it now rather than at some later garbage collection.
  #dropPicture() {
    this.picture?.bitmap.close();
    this.covered?.bitmap.close();
    this.picture = null;
    this.covered = null;
  }

  #down(event) {
    if (this.active || (event.pointerType === "mouse" && event.button !== 0)) return;
    event.preventDefault();
    this.canvas.setPointerCapture(event.pointerId);
    this.canvas.focus({ preventScroll: true, focusVisible: false }); // for the keys; no ring for a pointer
    if (this.picture) [this.covered, this.picture] = [this.picture, null]; // drawing replaces an imported picture
    this.#forgetCleared(); // a new drawing: what was cleared before is gone
    this.boxes = [];
    this.words = [];
    const points = [this.#point(event)];
    const stroke = { width: this.penWidth, points, drawn: { width: this.penWidth, points, size: { ...this.size } } };
    this.strokes.push(stroke);
    this.active = { id: event.pointerId, stroke };
    this.redraw();
    this.onStrokeStart();
  }

  #move(event) {
    if (!this.active || event.pointerId !== this.active.id) return;
    event.preventDefault();
    const points = this.active.stroke.points;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const each of events.length ? events : [event]) {
      const point = this.#point(each);
      const last = points[points.length - 1];
      if (Math.hypot(point[0] - last[0], point[1] - last[1]) >= MIN_STEP) points.push(point);
    }
    this.redraw();
  }

  #up(event, lifted) {
    if (!this.active || event.pointerId !== this.active.id) return;
    if (lifted) this.#move(event);
    this.active = null;
    this.onStrokeEnd();
  }

  #point(event) {
    const rect = this.canvas.getBoundingClientRect();
    const x = ((event.clientX - rect.left) * this.size.width) / rect.width;
    const y = ((event.clientY - rect.top) * this.size.height) / rect.height;
    return [round(x), round(y)];
  }

  // Keeps the backing store at device pixels and the drawing in proportion when the canvas changes size.
  #resize() {
    const rect = this.canvas.getBoundingClientRect();
    if (rect.width === 0 || rect.height === 0) return;
    const old = this.size;
    const resized = old.width && (rect.width !== old.width || rect.height !== old.height);
    if (resized) {
      // From each stroke as drawn, one factor for both axes, the smaller: the drawing keeps its shape and stays on
      // the pad, and scaling never compounds (turned there and back, a phone shows the drawing as it was).
      for (const stroke of [...this.strokes, ...(this.cleared?.strokes ?? [])]) {
        const { width, points, size } = stroke.drawn;
        const factor = Math.min(rect.width / size.width, rect.height / size.height);
        stroke.points = points.map((point) => point.map((v) => round(v * factor)));
        stroke.width = width * factor;
        if (stroke === this.active?.stroke) {
          stroke.drawn = { width: stroke.width, points: stroke.points, size: { width: rect.width, height: rect.height } };
        }
      }
      this.boxes = [];
      this.words = [];
    }
    this.size = { width: rect.width, height: rect.height };
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(rect.width * ratio);
    this.canvas.height = Math.round(rect.height * ratio);
    this.redraw();
    if (resized) this.onResize();
  }

  #pictureFit() {
    const { width, height } = this.picture;
    const room = { width: this.size.width - 2 * PICTURE_MARGIN, height: this.size.height - 2 * PICTURE_MARGIN };
    const scale = Math.min(room.width / width, room.height / height);
    return {
      scale,
      dx: (this.size.width - width * scale) / 2,
      dy: (this.size.height - height * scale) / 2,
    };
  }

  #drawBoxes() {
    if (this.boxes.length === 0 && this.words.length === 0) return;
    const ctx = this.context;
    const fit = this.picture ? this.#pictureFit() : { scale: 1, dx: 0, dy: 0 };
    // A word's box leaves room above for its characters' labels.
    const place = ([x, y, w, h], pad, above = pad) => [
      fit.dx + x * fit.scale - pad,
      fit.dy + y * fit.scale - above,
      w * fit.scale + 2 * pad,
      h * fit.scale + pad + above,
    ];
    ctx.save();
    ctx.strokeStyle = this.colors.box;
    ctx.fillStyle = this.colors.box;
    ctx.lineWidth = 1;
    for (const { box } of this.words) ctx.strokeRect(...place(box, 6, 24));
    ctx.lineWidth = 2;
    ctx.setLineDash([6, 4]);
    ctx.textBaseline = "bottom";
    for (const { box, label } of this.boxes) {
      const [left, top, width, height] = place(box, 0);
      ctx.strokeRect(left, top, width, height);
      // Small writing has narrow boxes: a label wider than its box shrinks (to a floor), or it runs into the next.
      ctx.font = `bold ${LABEL_PX}px system-ui, sans-serif`;
      const size = Math.max(SMALLEST_LABEL_PX, Math.min(LABEL_PX, (LABEL_PX * (width + 2)) / ctx.measureText(label).width));
      ctx.font = `bold ${Math.floor(size)}px system-ui, sans-serif`;
      ctx.fillText(label, left + 2, Math.max(size, top - 2));
    }
    ctx.restore();
  }
}

function readColors(canvas) {
  const style = getComputedStyle(canvas);
  const color = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
  return { paper: color("--paper", "#ffffff"), ink: color("--ink", "#111827"), box: color("--box", "#c2410c") };
}

const round = (value) => Math.round(value * 10) / 10; // a tenth of a CSS pixel is plenty

// A stroke as a smooth curve: quadratic segments through the midpoints of the points.
function drawStroke(ctx, { width, points }, ink) {
  ctx.strokeStyle = ink;
  ctx.fillStyle = ink;
  ctx.lineWidth = width;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  const [first] = points;
  if (points.length === 1) {
    ctx.beginPath();
    ctx.arc(first[0], first[1], width / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.beginPath();
  ctx.moveTo(first[0], first[1]);
  for (let i = 1; i < points.length - 1; i += 1) {
    const [x, y] = points[i];
    const [nx, ny] = points[i + 1];
    ctx.quadraticCurveTo(x, y, (x + nx) / 2, (y + ny) / 2);
  }
  const last = points[points.length - 1];
  ctx.lineTo(last[0], last[1]);
  ctx.stroke();
}
