// How many bytes read to a person, the one way for every screen (drive, attachments, public
// links, administration): powers of 1024 labelled KB/MB/GB/TB, so a quota an administrator sets
// as "3 MB" is the "3 MB" its owner sees in the drive.

/** The bytes in one unit an administrator can type a quota in (Admin's quota field). */
export const SIZE_UNITS = { MB: 1024 ** 2, GB: 1024 ** 3 } as const;

/** "0 B", "999 B", "1.5 KB", "12 MB", "1.1 GB" (powers of 1024, one decimal below 10). */
export function formatSize(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "";
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const shown = v < 10 ? (Math.round(v * 10) / 10).toString() : Math.round(v).toString();
  return `${shown} ${units[i]}`;
}
