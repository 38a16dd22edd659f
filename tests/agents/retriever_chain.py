"""A small RAG chain: a custom retriever feeds a prompt, the model answers."""

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnablePassthrough
from langchain_openai import ChatOpenAI


class Notes(BaseRetriever):
    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [Document(page_content=f"note about {query}", metadata={"source": "notes.txt"})]


prompt = ChatPromptTemplate.from_template("Context: {context}\nQuestion: {question}")
chain = {"context": Notes(), "question": RunnablePassthrough()} | prompt | ChatOpenAI(model="gpt-4o-mini") | StrOutputParser()
print(chain.invoke("tracing"))
