/**
 * Whether `work` settles within `ms`: the bounded grace period of a shutdown (SPEC §9). The timer
 * is cleared as soon as the work is done, so it never holds the process open.
 */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([work.then(() => true as const, () => true as const), graceOver]);
  } finally {
    clearTimeout(timer);
  }
}
