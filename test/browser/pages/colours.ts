/** Probe: Chromium decodes a PNG and counts its distinct colours (a blank or broken page has a handful). */
async function countColours(base64: string): Promise<{ distinct: number; width: number; height: number }> {
  const image = new Image();
  image.src = `data:image/png;base64,${base64}`;
  await image.decode();
  const canvas = new OffscreenCanvas(image.width, image.height);
  const context = canvas.getContext('2d')!;
  context.drawImage(image, 0, 0);
  const pixels = new Uint32Array(context.getImageData(0, 0, image.width, image.height).data.buffer);
  return { distinct: new Set(pixels).size, width: image.width, height: image.height };
}

Object.assign(globalThis, { probes: { countColours } });
