// Imported images (file picker, camera, drag and drop, paste) -> a picture the pad can show and the API can read.

const SENT_AS_IS = ["image/png", "image/jpeg", "image/webp", "image/bmp", "image/gif"]; // what the service decodes
// Larger files and photos are scaled down and re-encoded before sending: the service reads a picture at
// 512 px on its long side anyway (a line of text at up to 2,048), and a phone's 5-10 MB photo would take
// most of a slow uplink's minute.
const MAX_SENT_BYTES = 1.5 * 1024 * 1024;
const MAX_SIDE = 2048;

/**
 * File -> { bitmap, width, height, dataUrl, name, backdrop }; throws Error with a message for the person.
 * `backdrop` is the colour the picture's transparent pixels stand for (null if it has none).
 */
export async function loadPicture(file) {
  const name = file.name || "the pasted image";
  if (file.type && !file.type.startsWith("image/")) {
    throw new Error(`${name} is not an image (${file.type}); choose a PNG or JPEG photo or scan.`);
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(file); // applies the photo's EXIF orientation, as the service does
  } catch {
    throw new Error(`The browser could not open ${name} as an image; try a PNG or JPEG file.`);
  }
  const { width, height } = bitmap;
  const backdrop = backdropOf(bitmap);
  if (SENT_AS_IS.includes(file.type) && file.size <= MAX_SENT_BYTES && Math.max(width, height) <= MAX_SIDE) {
    return { bitmap, width, height, dataUrl: await readDataUrl(file), name, backdrop };
  }
  const smaller = await reencode(bitmap, backdrop ?? "#ffffff");
  bitmap.close(); // the full-size photo is no longer needed
  return { ...smaller, name, backdrop };
}

/** The first image file in a list of files or data-transfer items, or null. */
export function firstImageFile(files) {
  for (const file of files ?? []) {
    if (file && (!file.type || file.type.startsWith("image/"))) return file;
  }
  return null;
}

function readDataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error("The image file could not be read."));
    reader.readAsDataURL(blob);
  });
}

// The service shows transparent pixels as white behind dark ink and as black behind light ink (the opaque
// pixels' mean grey level decides: function/recognizer/decode.py flatten_to_gray); the pad and a re-encoded
// photo show them the same way, so light strokes exported on a transparent canvas stay visible.
const BACKDROP_SAMPLE = 256; // the rule is applied to a copy at most this many px on its long side
function backdropOf(bitmap) {
  const { canvas, ctx } = scaledCopy(bitmap, BACKDROP_SAMPLE, null, { willReadFrequently: true });
  const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let transparent = false;
  let sum = 0;
  let opaque = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    if (pixels[i + 3] < 255) transparent = true;
    if (pixels[i + 3] > 127) {
      sum += 0.299 * pixels[i] + 0.587 * pixels[i + 1] + 0.114 * pixels[i + 2];
      opaque++;
    }
  }
  if (!transparent) return null;
  return opaque && sum / opaque > 127 ? "#000000" : "#ffffff";
}

// Draws the image (at most MAX_SIDE on its long side) on `backdrop` and encodes it as JPEG.
async function reencode(source, backdrop) {
  const { canvas } = scaledCopy(source, MAX_SIDE, backdrop);
  const bitmap = await createImageBitmap(canvas);
  return { bitmap, width: canvas.width, height: canvas.height, dataUrl: canvas.toDataURL("image/jpeg", 0.92) };
}

// The image drawn on a new canvas at most `maxSide` on its long side, over `fill` (a colour, or null: none).
// A plain canvas, not OffscreenCanvas: Safari before 16.4 lacks it.
function scaledCopy(source, maxSide, fill, options = {}) {
  const scale = Math.min(1, maxSide / Math.max(source.width, source.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(source.width * scale));
  canvas.height = Math.max(1, Math.round(source.height * scale));
  const ctx = canvas.getContext("2d", options);
  if (fill) {
    ctx.fillStyle = fill;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  }
  ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
  return { canvas, ctx };
}
