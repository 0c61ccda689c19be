# GPU image for the local challenge runner and the tools (extract_embeddings.py, fewshot.py,
# make_submission.py, hear_api). Build and run (needs the NVIDIA container toolkit):
#   docker build -t autospeech .                                  # fetches the weights
#   docker run --rm --gpus all autospeech python run_local_test.py
# Without weights in the image, mount them (weights/manifest.json stays the image's):
#   docker build --build-arg DOWNLOAD_WEIGHTS=0 -t autospeech .
#   docker run --rm --gpus all -v "$PWD/weights:/weights:ro" -e AUTOSPEECH_WEIGHTS=/weights autospeech
FROM nvidia/cuda:13.0.1-cudnn-runtime-ubuntu22.04

# torch 2.13.0 is built for CUDA 13.0 (cu130), matching the base image.
ARG PYTHON_VERSION=3.11.14
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu130
ARG DOWNLOAD_WEIGHTS=1

ENV PYTHONUNBUFFERED=1 \
    UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_NO_CACHE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

COPY --from=ghcr.io/astral-sh/uv:0.13.8 /uv /usr/local/bin/uv
# --seed: download_weights.py fetches weight wheels with pip
RUN uv venv --seed --python "${PYTHON_VERSION}" "${VIRTUAL_ENV}"

WORKDIR /app
COPY pyproject.toml ./
RUN uv pip install torch==2.13.0 --index-url "${TORCH_INDEX}" \
    && uv pip install -r pyproject.toml --extra speaker --extra ray

RUN useradd --create-home --uid 1000 app && chown app /app
USER 1000:1000
COPY --chown=1000:1000 . .
RUN if [ "${DOWNLOAD_WEIGHTS}" = "1" ]; then python download_weights.py; fi

# Challenge runs are offline: nothing may reach a model hub at run time.
ENV HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
CMD ["python", "run_local_test.py"]
