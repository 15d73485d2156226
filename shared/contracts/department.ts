import { z } from 'zod';

/**
 * A department id: what CHARGEBACK_CONFIG lists, what report file names and the finance API's
 * filter use. One rule, so a configured department is always one the reports can name. (The
 * attribution header is still read with a looser rule; a department APIM names outside this rule
 * is billed, and appears in the main report files only.)
 */
export const DEPARTMENT_ID_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** The same rule without anchors, for paths that embed a department id. */
export const DEPARTMENT_ID_SOURCE = DEPARTMENT_ID_PATTERN.source.slice(1, -1);

export const DEPARTMENT_ID_RULE =
  'lower-case letters, digits, . _ - (starting with a letter or digit, at most 64)';

export const departmentIdSchema = z
  .string()
  .regex(DEPARTMENT_ID_PATTERN, `must be a department id: ${DEPARTMENT_ID_RULE}`);

export function isDepartmentId(value: string): boolean {
  return DEPARTMENT_ID_PATTERN.test(value);
}

/** The department charged when APIM could not name one; kept visible, never dropped. */
export const UNASSIGNED_DEPARTMENT = 'unassigned';
