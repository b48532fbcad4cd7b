/** Docker label keys that cryo sets on the containers it creates. */
export const LABEL_RESTORED_FROM = 'io.cryo.restored-from';
export const LABEL_SOURCE_CONTAINER = 'io.cryo.source-container';
