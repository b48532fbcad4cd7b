const seg = encodeURIComponent;

/** The API's paths that more than one client calls. */
export const apiPaths = {
  host: '/v1/host',
  images: '/v1/images',
  imagePresent: (id: string) => `/v1/images/present?id=${seg(id)}`,
  checkpoints: '/v1/checkpoints',
  checkpoint: (id: string) => `/v1/checkpoints/${seg(id)}`,
  restore: (id: string) => `/v1/checkpoints/${seg(id)}/restore`,
  archive: (id: string, compress: string) => `/v1/checkpoints/${seg(id)}/archive?compress=${seg(compress)}`,
} as const;
