/// The OpenAPI 3.1 description of the API, served at `GET /openapi.json`. Kept beside the handlers
/// it describes; a contract test (schemathesis) checks the running server against it.
enum OpenAPIDocument {
    static let json = #"""
        {
          "openapi": "3.1.0",
          "info": {"title": "SpikeServe", "version": "1.0.0",
                   "description": "Serving spiking neural networks converted from ANNs (hybrid conversion + STDB). Classification runs under a per-request time-step budget."},
          "servers": [{"url": "/"}],
          "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
              "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
              "Job": {"type": "object", "required": ["id", "object", "model", "status", "created_at"], "properties": {
                "id": {"type": "string"}, "object": {"type": "string"}, "model": {"type": "string"}, "base_version": {"type": "integer"},
                "status": {"type": "string", "enum": ["validating_files", "queued", "running", "cancelling", "succeeded", "failed", "cancelled"]},
                "created_at": {"type": "integer"}, "started_at": {"type": ["integer", "null"]}, "finished_at": {"type": ["integer", "null"]},
                "estimated_finish": {"type": ["integer", "null"]}, "hyperparameters": {"type": "object"}, "progress": {"type": "object"},
                "metrics": {"type": "object"}, "result": {"type": ["object", "null"]}, "error": {"type": ["object", "null"]}, "resumable": {"type": "boolean"}}},
              "Version": {"type": "object", "required": ["version", "default", "state"], "properties": {
                "version": {"type": "integer"}, "default": {"type": "boolean"}, "state": {"type": "string", "enum": ["ready", "failed"]},
                "created_at": {"type": ["string", "null"]}, "base_model": {"type": ["string", "null"]},
                "accuracies": {"type": "object", "additionalProperties": {"type": "number"}}, "error": {"type": "string"}}},
              "ModelSummary": {"type": "object", "required": ["name", "versions", "ready"], "properties": {
                "name": {"type": "string"}, "default_version": {"type": ["integer", "null"]}, "versions": {"type": "array", "items": {"type": "integer"}},
                "architecture": {"type": ["string", "null"]}, "default_timesteps": {"type": ["integer", "null"]}, "ready": {"type": "boolean"}}},
              "ModelDetail": {"type": "object", "required": ["name", "versions", "ready"], "properties": {
                "name": {"type": "string"}, "architecture": {"type": "string"},
                "input": {"type": "object", "properties": {"channels": {"type": "integer"}, "height": {"type": "integer"}, "width": {"type": "integer"},
                  "mean": {"type": "array", "items": {"type": "number"}}, "std": {"type": "array", "items": {"type": "number"}}}},
                "labels": {"type": "array", "items": {"type": "string"}}, "default_timesteps": {"type": "integer"}, "max_timesteps": {"type": "integer"},
                "encoding": {"type": "string", "enum": ["poisson", "direct"]}, "leak": {"type": "number"},
                "thresholds": {"type": "array", "items": {"type": "number"}}, "default_version": {"type": ["integer", "null"]},
                "versions": {"type": "array", "items": {"$ref": "#/components/schemas/Version"}},
                "accuracies": {"type": "object", "additionalProperties": {"type": "number"}}, "ready": {"type": "boolean"}}},
              "ClassifyParameters": {"type": "object", "properties": {
                "timesteps": {"type": "integer", "minimum": 1, "description": "Time-step budget T (default: the model's; at most its max_timesteps)."},
                "top_k": {"type": "integer", "minimum": 1}, "seed": {"type": "integer", "minimum": 0, "description": "Seed of the Poisson input, for reproducible results."},
                "trace": {"type": "boolean", "description": "Return the running prediction after every step."},
                "deadline_ms": {"type": "integer", "minimum": 1, "maximum": 3600000}}},
              "ClassifyResponse": {"type": "object", "required": ["model", "model_version", "request_id", "timesteps", "results"], "properties": {
                "model": {"type": "string"}, "model_version": {"type": "integer"}, "request_id": {"type": "string"}, "timesteps": {"type": "integer"},
                "seed": {"type": "string"}, "timings_ms": {"type": "object", "properties": {"total": {"type": "number"}}},
                "results": {"type": "array", "items": {"type": "object", "required": ["predictions", "timesteps_used", "spike_count", "synaptic_ops"], "properties": {
                  "decided": {"type": "boolean", "description": "False when the output potentials decided nothing (equal top potentials, e.g. too few time steps); predictions is then empty."},
                  "predictions": {"type": "array", "items": {"type": "object", "required": ["label", "index", "score"], "properties": {
                    "label": {"type": "string"}, "index": {"type": "integer"}, "score": {"type": "number"}}}},
                  "timesteps_used": {"type": "integer"}, "spike_count": {"type": "integer"}, "synaptic_ops": {"type": "integer"},
                  "spike_rates": {"type": "array", "items": {"type": "number"}},
                  "timings_ms": {"type": "object", "properties": {"decode": {"type": "number"}, "queue": {"type": "number"}, "compute": {"type": "number"}, "batch_size": {"type": "integer"}}},
                  "trace": {"type": "array", "items": {"type": "object", "properties": {"step": {"type": "integer"}, "decided": {"type": "boolean"}, "index": {"type": "integer"},
                    "label": {"type": "string"}, "scores": {"type": "array", "items": {"type": "number"}}}}}}}}}}
            },
            "responses": {
              "BadRequest": {"description": "Invalid parameter or undecodable image", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "Unauthorized": {"description": "Missing or invalid bearer token", "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "Forbidden": {"description": "Wrong scope, or admin endpoints disabled", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "NotFound": {"description": "Unknown model or version", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "MethodNotAllowed": {"description": "Method not allowed", "headers": {"Allow": {"schema": {"type": "string"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "TooLarge": {"description": "Body or image count over the limit", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "Unsupported": {"description": "Unsupported Content-Type", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "QueueFull": {"description": "Inference queue full", "headers": {"Retry-After": {"schema": {"type": "string"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "Unavailable": {"description": "Not ready or shutting down", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "Timeout": {"description": "deadline_ms exceeded", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            },
            "parameters": {
              "name": {"name": "name", "in": "path", "required": true, "schema": {"type": "string"}},
              "job": {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
              "version": {"name": "version", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}},
              "timesteps": {"name": "timesteps", "in": "query", "schema": {"type": "integer", "minimum": 1}},
              "top_k": {"name": "top_k", "in": "query", "schema": {"type": "integer", "minimum": 1}},
              "seed": {"name": "seed", "in": "query", "schema": {"type": "integer", "minimum": 0}},
              "trace": {"name": "trace", "in": "query", "schema": {"type": "boolean"}},
              "deadline_ms": {"name": "deadline_ms", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 3600000}}
            },
            "requestBodies": {
              "Images": {"required": true, "content": {
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {"schema": {"allOf": [{"$ref": "#/components/schemas/ClassifyParameters"}, {"type": "object", "required": ["image"],
                  "properties": {"image": {"type": "array", "items": {"type": "string", "format": "binary"}}}}]}},
                "application/json": {"schema": {"allOf": [{"$ref": "#/components/schemas/ClassifyParameters"}, {"type": "object", "required": ["images"],
                  "properties": {"images": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["b64"], "properties": {"b64": {"type": "string", "contentEncoding": "base64", "description": "The image file in base64 (standard or URL-safe alphabet, padding optional), or a data: URI such as data:image/jpeg;base64,..."}}}}}}]}}}}
            }
          },
          "paths": {
            "/v1/fine_tuning/jobs": {
              "post": {"summary": "Start a fine-tuning job", "security": [{"bearer": []}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["model", "training_data"], "properties": {
                  "model": {"type": "string"}, "training_data": {"type": "string", "description": "Path under --data-root (ImageFolder directory, .tar or .tar.gz) or an uploaded dataset id (ds_…)"},
                  "validation_data": {"type": "string"}, "validation_split": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                  "hyperparameters": {"type": "object", "properties": {"timesteps": {"type": "integer", "minimum": 1}, "epochs": {"type": "integer", "minimum": 1},
                    "learning_rate": {"type": "number"}, "batch_size": {"type": "integer", "minimum": 1}, "surrogate": {"type": "string", "enum": ["stdb", "linear"]},
                    "alpha": {"type": "number"}, "beta": {"type": "number"}, "limit": {"type": "integer", "minimum": 1}}},
                  "auto_deploy": {"type": "boolean"}, "min_accuracy": {"type": "number", "minimum": 0, "maximum": 1}, "force": {"type": "boolean"}, "seed": {"type": "integer", "minimum": 0}}}}}},
                "responses": {"201": {"description": "Created", "headers": {"Location": {"schema": {"type": "string"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}},
                  "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"},
                  "429": {"$ref": "#/components/responses/QueueFull"}}},
              "get": {"summary": "List fine-tuning jobs", "security": [{"bearer": []}],
                "parameters": [{"name": "status", "in": "query", "schema": {"type": "string", "enum": ["validating_files", "queued", "running", "cancelling", "succeeded", "failed", "cancelled"]}},
                  {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}}, {"name": "after", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": {"description": "Jobs, newest first", "content": {"application/json": {"schema": {"type": "object", "required": ["data", "has_more"], "properties": {
                  "object": {"type": "string"}, "data": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}}, "has_more": {"type": "boolean"}}}}}},
                  "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"}}}},
            "/v1/fine_tuning/jobs/{id}": {"get": {"summary": "A fine-tuning job", "security": [{"bearer": []}], "parameters": [{"$ref": "#/components/parameters/job"}],
              "responses": {"200": {"description": "Job", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}},
                "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"}, "404": {"$ref": "#/components/responses/NotFound"}}}},
            "/v1/fine_tuning/jobs/{id}/cancel": {"post": {"summary": "Cancel a job (takes effect within one batch)", "security": [{"bearer": []}], "parameters": [{"$ref": "#/components/parameters/job"}],
              "responses": {"200": {"description": "Job", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}},
                "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"}, "404": {"$ref": "#/components/responses/NotFound"},
                "409": {"description": "Already finished", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
            "/v1/fine_tuning/jobs/{id}/resume": {"post": {"summary": "Resume a failed, resumable job from its checkpoint", "security": [{"bearer": []}], "parameters": [{"$ref": "#/components/parameters/job"}],
              "responses": {"200": {"description": "Job", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}},
                "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"}, "404": {"$ref": "#/components/responses/NotFound"},
                "409": {"description": "Not resumable", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
            "/v1/fine_tuning/jobs/{id}/events": {"get": {"summary": "A job's events; with stream=true, Server-Sent Events until the job ends", "security": [{"bearer": []}],
              "parameters": [{"$ref": "#/components/parameters/job"}, {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}}, {"name": "stream", "in": "query", "schema": {"type": "boolean"}}],
              "responses": {"200": {"description": "Events", "content": {"application/json": {"schema": {"type": "object", "properties": {"data": {"type": "array", "items": {"type": "object"}}, "has_more": {"type": "boolean"}}}},
                  "text/event-stream": {"schema": {"type": "string"}}}},
                "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"}, "404": {"$ref": "#/components/responses/NotFound"}}}},
            "/v1/fine_tuning/jobs/{id}/checkpoints": {"get": {"summary": "A job's checkpoints", "security": [{"bearer": []}], "parameters": [{"$ref": "#/components/parameters/job"}],
              "responses": {"200": {"description": "Checkpoints", "content": {"application/json": {"schema": {"type": "object", "properties": {"data": {"type": "array", "items": {"type": "object"}}}}}}},
                "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"}, "404": {"$ref": "#/components/responses/NotFound"}}}},
            "/v1/datasets": {"post": {"summary": "Upload an ImageFolder as .tar or .tar.gz", "security": [{"bearer": []}],
              "parameters": [{"name": "model", "in": "query", "description": "Check the classes against this model's labels", "schema": {"type": "string"}}],
              "requestBody": {"required": true, "description": "A tar or tar.gz archive (any Content-Type; the format is read from the bytes)", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
              "responses": {"201": {"description": "Dataset", "content": {"application/json": {"schema": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}, "classes": {"type": "array", "items": {"type": "string"}}, "images": {"type": "integer"}}}}}},
                "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"}, "413": {"$ref": "#/components/responses/TooLarge"}}}},
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "The process runs", "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"type": "string"}}}}}}}}},
            "/readyz": {"get": {"summary": "Readiness: 200 once the startup warm-up is done and at least one model serves its default version; models whose default version failed are listed under problems", "responses": {
              "200": {"description": "Ready", "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"type": "string"}, "models": {"type": "object", "additionalProperties": {"type": "string"}}}}}}},
              "503": {"description": "Not ready", "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"type": "string"}, "models": {"type": "object", "additionalProperties": {"type": "string"}}}}}}}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "Text exposition format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/v1/models": {"get": {"summary": "List models", "security": [{}, {"bearer": []}], "responses": {
              "200": {"description": "Models", "content": {"application/json": {"schema": {"type": "object", "required": ["models"], "properties": {"models": {"type": "array", "items": {"$ref": "#/components/schemas/ModelSummary"}}}}}}},
              "401": {"$ref": "#/components/responses/Unauthorized"}}}},
            "/v1/models/{name}": {"get": {"summary": "Describe a model", "security": [{}, {"bearer": []}], "parameters": [{"$ref": "#/components/parameters/name"}], "responses": {
              "200": {"description": "Model", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ModelDetail"}}}},
              "401": {"$ref": "#/components/responses/Unauthorized"}, "404": {"$ref": "#/components/responses/NotFound"}}}},
            "/v1/models/{name}/versions": {"get": {"summary": "List a model's versions", "security": [{}, {"bearer": []}], "parameters": [{"$ref": "#/components/parameters/name"}], "responses": {
              "200": {"description": "Versions", "content": {"application/json": {"schema": {"type": "object", "required": ["model", "versions"], "properties": {
                "model": {"type": "string"}, "versions": {"type": "array", "items": {"$ref": "#/components/schemas/Version"}}}}}}},
              "401": {"$ref": "#/components/responses/Unauthorized"}, "404": {"$ref": "#/components/responses/NotFound"}}}},
            "/v1/models/{name}/default": {"put": {"summary": "Set the default version (pin or roll back)", "security": [{"bearer": []}],
              "parameters": [{"$ref": "#/components/parameters/name"}],
              "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["version"], "properties": {"version": {"type": "integer", "minimum": 1}}}}}},
              "responses": {"200": {"description": "Updated model", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ModelDetail"}}}},
                "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"},
                "404": {"$ref": "#/components/responses/NotFound"}, "409": {"description": "Unknown or broken version", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
            "/v1/models/{name}/classify": {"post": {"summary": "Classify images with the default version", "security": [{}, {"bearer": []}],
              "parameters": [{"$ref": "#/components/parameters/name"}, {"$ref": "#/components/parameters/timesteps"}, {"$ref": "#/components/parameters/top_k"},
                {"$ref": "#/components/parameters/seed"}, {"$ref": "#/components/parameters/trace"}, {"$ref": "#/components/parameters/deadline_ms"}],
              "requestBody": {"$ref": "#/components/requestBodies/Images"},
              "responses": {"200": {"description": "Predictions", "headers": {"X-Request-Id": {"schema": {"type": "string"}}, "X-Model-Version": {"schema": {"type": "string"}}},
                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ClassifyResponse"}}}},
                "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "404": {"$ref": "#/components/responses/NotFound"},
                "413": {"$ref": "#/components/responses/TooLarge"}, "415": {"$ref": "#/components/responses/Unsupported"}, "429": {"$ref": "#/components/responses/QueueFull"},
                "503": {"$ref": "#/components/responses/Unavailable"}, "504": {"$ref": "#/components/responses/Timeout"}}}},
            "/v1/models/{name}/versions/{version}/classify": {"post": {"summary": "Classify images with a given version", "security": [{}, {"bearer": []}],
              "parameters": [{"$ref": "#/components/parameters/name"}, {"$ref": "#/components/parameters/version"}, {"$ref": "#/components/parameters/timesteps"},
                {"$ref": "#/components/parameters/top_k"}, {"$ref": "#/components/parameters/seed"}, {"$ref": "#/components/parameters/trace"}, {"$ref": "#/components/parameters/deadline_ms"}],
              "requestBody": {"$ref": "#/components/requestBodies/Images"},
              "responses": {"200": {"description": "Predictions", "headers": {"X-Request-Id": {"schema": {"type": "string"}}, "X-Model-Version": {"schema": {"type": "string"}}},
                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ClassifyResponse"}}}},
                "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "404": {"$ref": "#/components/responses/NotFound"},
                "413": {"$ref": "#/components/responses/TooLarge"}, "415": {"$ref": "#/components/responses/Unsupported"}, "429": {"$ref": "#/components/responses/QueueFull"},
                "503": {"$ref": "#/components/responses/Unavailable"}, "504": {"$ref": "#/components/responses/Timeout"}}}}
          }
        }
        """#
}
