/** Docker label keys that cryo sets on the containers it creates. */
export const LABEL_RESTORED_FROM = 'io.cryo.restored-from';
export const LABEL_SOURCE_CONTAINER = 'io.cryo.source-container';
/** On a container restored from another engine's checkpoint (Podman): that engine's name. */
export const LABEL_SOURCE_ENGINE = 'io.cryo.source-engine';
