/**
 * A distinct loopback address for each index, 127.x.y.z with z from 1 to 254: Linux routes all of
 * 127.0.0.0/8 to loopback, so one server on 0.0.0.0 is a different host for each address.
 */
export function loopbackAddress(index: number): string {
  return `127.${1 + Math.floor(index / (256 * 254))}.${Math.floor(index / 254) % 256}.${1 + (index % 254)}`;
}
