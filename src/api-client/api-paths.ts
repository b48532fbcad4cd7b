const seg = encodeURIComponent;

/** The API's paths that more than one client calls. */
export const apiPaths = {
  host: '/v1/host',
  images: '/v1/images',
  imagePresent: (image: { id: string; ref?: string; layers?: string[] }) =>
    `/v1/images/present?${new URLSearchParams({
      id: image.id,
      ...(image.ref ? { ref: image.ref } : {}),
      ...(image.layers?.length ? { layers: image.layers.join(',') } : {}),
    }).toString()}`,
  checkpoints: '/v1/checkpoints',
  migrationImport: (migrationId: string) => `/v1/checkpoints?migration=${encodeURIComponent(migrationId)}`,
  checkpointsNamed: (name: string) => `/v1/checkpoints?name=${seg(name)}`,
  restoredFrom: (checkpointId: string) => `/v1/containers?restoredFrom=${seg(checkpointId)}`,
  checkpoint: (id: string) => `/v1/checkpoints/${seg(id)}`,
  push: (id: string) => `/v1/checkpoints/${seg(id)}/push`,
  pull: '/v1/checkpoints/pull',
  restore: (id: string) => `/v1/checkpoints/${seg(id)}/restore`,
  prepare: (id: string) => `/v1/checkpoints/${seg(id)}/prepare`,
  archive: (id: string, compress: string, format = 'cryo') =>
    `/v1/checkpoints/${seg(id)}/archive?compress=${seg(compress)}&format=${seg(format)}`,
} as const;
