/**
 * NTSTATUS values returned by the V2 routines, as the unsigned numbers of
 * Windows' ntstatus.h (0xC0000001 is 3221225473, never a negative int32).
 */
export const NTSTATUS = Object.freeze({
  STATUS_SUCCESS: 0x00000000,
  STATUS_UNSUCCESSFUL: 0xc0000001,
  STATUS_NOT_IMPLEMENTED: 0xc0000002,
  STATUS_INVALID_PARAMETER: 0xc000000d,
  STATUS_ACCESS_DENIED: 0xc0000022,
  STATUS_BUFFER_TOO_SMALL: 0xc0000023,
  STATUS_INVALID_PARAMETER_MIX: 0xc0000030,
  STATUS_INSUFFICIENT_RESOURCES: 0xc000009a,
  STATUS_NOT_SUPPORTED: 0xc00000bb,
  STATUS_INVALID_PARAMETER_1: 0xc00000ef,
  STATUS_INVALID_PARAMETER_2: 0xc00000f0,
  STATUS_INVALID_PARAMETER_3: 0xc00000f1,
  STATUS_INVALID_PARAMETER_4: 0xc00000f2,
  STATUS_INVALID_PARAMETER_5: 0xc00000f3,
  STATUS_INVALID_PARAMETER_6: 0xc00000f4,
  STATUS_INVALID_PARAMETER_7: 0xc00000f5,
  STATUS_NOT_FOUND: 0xc0000225,
  /** Used wherever Windows' documentation writes the non-existent "STATUS_IN_USE". */
  STATUS_RESOURCE_IN_USE: 0xc0000708,
} as const);

/**
 * The statuses the V2 routines return: the union of the values above (`0 | 0xc0000001 | …`).
 * A status compares with the constants (`status === STATUS_SUCCESS`); a bare number that is
 * no known status is not an NTSTATUS.
 */
export type NTSTATUS = (typeof NTSTATUS)[keyof typeof NTSTATUS];

export const {
  STATUS_SUCCESS,
  STATUS_UNSUCCESSFUL,
  STATUS_NOT_IMPLEMENTED,
  STATUS_INVALID_PARAMETER,
  STATUS_ACCESS_DENIED,
  STATUS_BUFFER_TOO_SMALL,
  STATUS_INVALID_PARAMETER_MIX,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_NOT_SUPPORTED,
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_2,
  STATUS_INVALID_PARAMETER_3,
  STATUS_INVALID_PARAMETER_4,
  STATUS_INVALID_PARAMETER_5,
  STATUS_INVALID_PARAMETER_6,
  STATUS_INVALID_PARAMETER_7,
  STATUS_NOT_FOUND,
  STATUS_RESOURCE_IN_USE,
} = NTSTATUS;

/** True exactly for the success and informational severities (status < 0x80000000); any 32-bit status value. */
export function NT_SUCCESS(status: number): boolean {
  return status >= 0 && status < 0x80000000;
}

const statusNames = new Map<number, string>(Object.entries(NTSTATUS).map(([name, value]) => [value, name]));

/** `STATUS_RESOURCE_IN_USE (0xC0000708)`: for messages and test output (any number: unknown ones in hex). */
export function describeStatus(status: number): string {
  const hex = `0x${status.toString(16).toUpperCase().padStart(8, '0')}`;
  const name = statusNames.get(status);
  return name === undefined ? hex : `${name} (${hex})`;
}

const invalidParameters = [
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_2,
  STATUS_INVALID_PARAMETER_3,
  STATUS_INVALID_PARAMETER_4,
  STATUS_INVALID_PARAMETER_5,
  STATUS_INVALID_PARAMETER_6,
  STATUS_INVALID_PARAMETER_7,
] as const;

/** STATUS_INVALID_PARAMETER_1..7 for a parameter position. */
export function invalidParameter(position: 1 | 2 | 3 | 4 | 5 | 6 | 7): NTSTATUS {
  return invalidParameters[position - 1]!;
}
