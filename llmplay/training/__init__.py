"""Fine-tuning: one training path for the Train tab, `llmplay train` and the continual-learning loop.

- config.py   TrainConfig / DataConfig: the validated job configuration
- data.py     training rows from datasets, files and feedback, formatted through the inference render path
- causal.py   causal-LM jobs (LoRA, AdaLoRA, DoRA, prompt tuning; SFT and continued pre-training)
- encoder.py  encoder jobs (sequence / token classification, masked-LM) on MiniLM or any BERT-family model
- callbacks.py progress rows, cancel, AdaLoRA's rank allocator (Trainer callbacks)
- entry.py    `llmplay train CONFIG.yaml`: the process a job runs in (also under torchrun / accelerate)
- jobs.py     the app side: a queue of jobs started as child processes, cancel, resume, re-attach
- records.py  job and progress rows in SQLite
"""
