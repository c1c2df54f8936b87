/**
 * A warning for the embedder's attention (a callback that threw, a device batch that failed,
 * when no handler was given): Node's process warning where there is one, else the console.
 */
export function warn(message: string | Error, type: string): void {
  const process = (globalThis as { process?: { emitWarning?: (warning: string | Error, type: string) => void } }).process;
  if (typeof process?.emitWarning === 'function') process.emitWarning(message, type);
  else console.warn(`${type}: ${message instanceof Error ? message.message : message}`);
}
