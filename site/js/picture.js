// Imported images (file picker, camera, drag and drop, paste) -> a picture the pad can show and the API can read.

const SENT_AS_IS = ["image/png", "image/jpeg", "image/webp", "image/bmp", "image/gif"]; // what the service decodes
// Larger files and photos are scaled down and re-encoded before sending: the service reads a line at
// 512 px on its long side anyway, and a phone's 5-10 MB photo would take most of a slow uplink's minute.
const MAX_SENT_BYTES = 1.5 * 1024 * 1024;
const MAX_SIDE = 2048;

/** File -> { bitmap, width, height, dataUrl, name }; throws Error with a message for the person. */
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
  if (SENT_AS_IS.includes(file.type) && file.size <= MAX_SENT_BYTES && Math.max(width, height) <= MAX_SIDE) {
    return { bitmap, width, height, dataUrl: await readDataUrl(file), name };
  }
  const smaller = await reencode(bitmap);
  bitmap.close(); // the full-size photo is no longer needed
  return { ...smaller, name };
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

// Draws the image (at most MAX_SIDE on its long side) on white and encodes it as JPEG.
async function reencode(source) {
  const scale = Math.min(1, MAX_SIDE / Math.max(source.width, source.height));
  const width = Math.max(1, Math.round(source.width * scale));
  const height = Math.max(1, Math.round(source.height * scale));
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(source, 0, 0, width, height);
  const bitmap = await createImageBitmap(canvas);
  return { bitmap, width, height, dataUrl: canvas.toDataURL("image/jpeg", 0.92) };
}
