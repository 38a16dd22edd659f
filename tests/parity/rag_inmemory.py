"""RAG: OpenAIEmbeddings + InMemoryVectorStore.from_texts + a retriever feeding an LCEL chain."""

from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_openai import ChatOpenAI, OpenAIEmbeddings

try:
    import numpy  # noqa: F401  (InMemoryVectorStore scores with numpy)

    VectorStore = InMemoryVectorStore
except ImportError:  # no numpy here: the same store, scored in pure Python

    class VectorStore(InMemoryVectorStore):
        def _similarity_search_with_score_by_vector(self, embedding, k=4, filter=None):
            def cosine(a, b):
                na = sum(x * x for x in a) ** 0.5 or 1.0
                nb = sum(x * x for x in b) ** 0.5 or 1.0
                return sum(x * y for x, y in zip(a, b)) / (na * nb)

            docs = [d for d in self.store.values()
                    if filter is None or filter(Document(id=d["id"], page_content=d["text"], metadata=d["metadata"]))]
            scored = sorted(((cosine(embedding, d["vector"]), i) for i, d in enumerate(docs)), key=lambda t: -t[0])
            return [
                (Document(id=docs[i]["id"], page_content=docs[i]["text"], metadata=docs[i]["metadata"]), score, docs[i]["vector"])
                for score, i in scored[:k]
            ]


texts = [
    "LangChain is a framework for developing applications powered by large language models.",
    "LangGraph builds stateful, multi-actor agents as graphs of nodes and edges.",
    "The Eiffel Tower is 330 metres tall and stands in Paris.",
    "Sourdough bread rises with wild yeast and lactic acid bacteria.",
    "SQLite is a small, fast, self-contained SQL database engine.",
]
embeddings = OpenAIEmbeddings(model="text-embedding-3-small", check_embedding_ctx_length=False)
store = VectorStore.from_texts(texts, embedding=embeddings)
retriever = store.as_retriever(search_kwargs={"k": 2})


def format_docs(docs):
    return "\n".join(f"- {d.page_content}" for d in docs)


prompt = ChatPromptTemplate.from_messages(
    [
        ("system", "Answer the question using only this context:\n{context}"),
        ("human", "{question}"),
    ]
)
chain = (
    {"context": retriever | format_docs, "question": RunnablePassthrough()}
    | prompt
    | ChatOpenAI(model="gpt-4o-mini", temperature=0)
    | StrOutputParser()
)

for question in ["How tall is the Eiffel Tower?", "What does LangGraph build?"]:
    docs = retriever.invoke(question)
    print("Q:", question)
    print("retrieved:", [d.page_content[:30] for d in docs])
    print("A:", chain.invoke(question))
