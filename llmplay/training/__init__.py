"""Fine-tuning: one training path for the Train tab, `llmplay train` and the continual-learning loop.

- config.py   TrainConfig / DataConfig: the validated job configuration (flat, made of the fields below)
- methods/    one module per training method (lora, adalora, dora, prompt_tuning, full): its config fields,
              their checks, the peft config / encoder model it builds; registered with ``register_method``
- tasks/      one module per task (sft, cpt, dpo, classification, ner, mlm): its fields, checks and trainer;
              registered with ``register_task``; entry.py runs ``get_task(config.task).train``
- scaffold.py what every trainer shares: TrainingArguments, callbacks, the run, metrics, saving
- data.py     training rows from datasets, files and feedback, formatted through the inference render path
- causal.py   causal-LM jobs (LoRA, AdaLoRA, DoRA, prompt tuning; SFT and continued pre-training)
- dpo.py      DPO jobs on preference pairs (TRL)
- encoder.py  encoder jobs (sequence / token classification, masked-LM) on MiniLM or any BERT-family model
- callbacks.py progress rows, cancel, AdaLoRA's rank allocator (Trainer callbacks)
- entry.py    `llmplay train CONFIG.yaml`: the process a job runs in (also under torchrun / accelerate)
- jobs.py     the app side: a queue of jobs started as child processes, cancel, resume, re-attach
- records.py  job and progress rows in SQLite

A new method or task is one module in methods/ or tasks/ plus one name in that package's import list.
Must not know: the UI (gradio); the app side (jobs.py) imports no torch.
"""
